"""semcoat render_service."""
