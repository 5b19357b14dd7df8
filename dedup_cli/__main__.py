"""Run the command line with `python -m dedup_cli`."""

from dedup_cli.cli import main

if __name__ == "__main__":
    main()
