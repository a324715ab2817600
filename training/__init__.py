"""semcoat training."""
