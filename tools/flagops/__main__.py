"""``python -m flagops``: the same command line as the ``flagops`` script."""

from .cli import run

if __name__ == "__main__":
    run()
