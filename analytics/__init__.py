"""The read side: stats, breakdowns, abuse, the owner and operator APIs."""
