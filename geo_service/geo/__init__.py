"""Pure spatial helpers: CRS and GCJ-02/BD-09 transforms, H3 helpers, point-in-grid assignment."""
