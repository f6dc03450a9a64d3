"""The beacon path: parse, identify, classify, throttle, dedup, group-commit."""
