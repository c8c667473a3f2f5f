"""``python -m shipyard``: the command line."""

from shipyard.cli import main

if __name__ == "__main__":
    main()
