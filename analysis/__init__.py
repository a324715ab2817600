"""semcoat analysis."""
