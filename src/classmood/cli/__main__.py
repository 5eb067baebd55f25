"""``python -m classmood.cli``."""

from classmood.cli import main

main()
