"""HTML reports of runs and verifies."""
