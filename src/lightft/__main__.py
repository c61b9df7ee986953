"""`python -m lightft` runs the CLI."""

from lightft.cli import main

main()
