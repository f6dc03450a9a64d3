"""The data directory: DuckDB schema, the registry of tours and tokens, the clock."""
