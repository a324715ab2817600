"""semcoat shared core: the coating and batch specs, the class table and the dataset-folder contract.

Standard library only: this package is copied into the Blender add-on, whose Python has no project dependencies.
"""

__version__ = "0.1.0"
