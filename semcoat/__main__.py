"""``python -m semcoat`` runs the command line."""

from semcoat.cli import main

main()
