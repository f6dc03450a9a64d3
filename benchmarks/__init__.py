"""``make bench``: measurements taken side by side in one run, reported as ratios."""
