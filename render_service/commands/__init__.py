"""Command-line adapters of the service: thin Typer front ends over the service's functions."""
