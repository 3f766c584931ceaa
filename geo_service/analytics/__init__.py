"""Pure analytics on arrays and GeoDataFrames: no database, no HTTP."""
