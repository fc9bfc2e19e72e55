"""`python -m loadtool` is the `loadtool` command."""

from .cli import main

main()
