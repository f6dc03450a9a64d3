"""The read side: stats, breakdowns, visits, rollups, retention, abuse and the report."""
