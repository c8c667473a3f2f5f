"""``python -m shipyard``: the command line."""

from shipyard.entry import main

if __name__ == "__main__":
    main()
