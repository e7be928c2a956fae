"""`python -m mobconv ...` is the same as the `mobconv` command."""
import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
