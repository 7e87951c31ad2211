"""The baseline the benchmarks compare against: the plainest correct compile loop.

For every tenant, the reference ``evaluate`` of every flag, ``json.dumps(sort_keys=True,
separators=(",", ":"))`` and one file write. Run as its own process, like ``flagops compile``:

    python benchmarks/baseline.py ROOT OUT ENVIRONMENT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from flagops.loading import FsSource, load_project
from flagops_client.evaluation import evaluate


def main(argv: list[str]) -> int:
    root, out, environment = Path(argv[0]), Path(argv[1]), argv[2]
    project = load_project(FsSource(root), [environment])
    flags = sorted(project.flag_data().items())
    tenants = project.inventories[environment].tenants
    directory = out / environment / "tenants"
    directory.mkdir(parents=True, exist_ok=True)
    for tenant in tenants:
        values = {key: evaluate(flag, tenant, environment) for key, flag in flags}
        bundle = {"schemaVersion": 1, "environment": environment, "tenant": tenant["slug"], "flags": values}
        with open(directory / f"{tenant['slug']}.json", "w", encoding="utf-8") as fh:
            fh.write(json.dumps(bundle, sort_keys=True, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
