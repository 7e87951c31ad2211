"""The file-system floor of a compile: create and write N files of a bundle's size, nothing else.

    python benchmarks/floor.py OUT_DIR COUNT SIZE

Runs as its own process like ``flagops compile``; the benchmarks report it beside the compile,
since on a slow or busy disk creating one file per tenant outweighs all the computing.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    out, count, size = argv[0], int(argv[1]), int(argv[2])
    os.makedirs(out)
    data = b"x" * (size - 1) + b"\n"
    for i in range(count):
        fd = os.open(f"{out}/tenant-{i:07d}.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
