"""Reading, parsing and validating files from other systems (pure: no database)."""
