"""``python -m carina`` runs the ``carina`` command line."""

from carina.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
