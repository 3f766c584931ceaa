"""Use cases shared by the API, the CLI and notebooks: load, compute, persist."""
