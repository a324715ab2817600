"""The scene package: coating geometry, inclusion placement and the Blender scene builder.

numpy and bpy only, with relative imports among its own modules and absolute ones of the core (``semcoat``), so that
the same code runs on a render node and inside the installed extension (``bl_ext.<repo>.semcoat``) on the Python that
ships with Blender. It touches nothing in a scene that the user did not ask it to.
"""
