"""``python -m losskit`` runs the command line (see :mod:`losskit.cli`)."""

from losskit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
