"""``python -m groundset.core`` runs the CLI, for environments without the console script."""

from groundset.core.cli import main

main()
