"""semcoat blender_addon."""
