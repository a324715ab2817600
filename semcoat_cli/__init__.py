"""The ``semcoat`` command line (Typer): the core's commands and the assembly of every part's subcommands.

Kept apart from the core (``semcoat/``), which is standard library only and is bundled into the Blender add-on.
"""
