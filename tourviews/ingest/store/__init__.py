"""Accepted beacons into DuckDB: the group commit, the batch writer, and the drain of
the shared ledger's stream."""
