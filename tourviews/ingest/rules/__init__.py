"""Judging a beacon: the pipeline's steps, and the ledger that keeps their shared state
(in this process's memory, or in Redis for every process of an instance)."""
