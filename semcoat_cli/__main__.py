"""``python -m semcoat_cli`` runs the command line (what `semcoat` runs)."""

from semcoat_cli.app import main

main()
