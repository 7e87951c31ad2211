"""The client benchmark runs end to end at a tiny size (the numbers themselves are not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_client_benchmark_runs_at_a_tiny_size(capsys):
    spec = importlib.util.spec_from_file_location("bench_client", ROOT / "benchmarks" / "bench_client.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    results = bench.main(["--tenants", "5", "--flags", "3", "--number", "2000", "--repeat", "2",
                          "--snapshot-tenants", "50"])
    out = capsys.readouterr().out
    assert "is_enabled (tenant in memory)" in out and "refresh 5 tenants, unchanged (http)" in out
    assert results["refresh_http_304"] == 5 and results["refresh_http_200"] == 0
    assert results["is_enabled_ns"] > 0 and results["refresh_file_s"] > 0
    assert results["refresh_head_requests"] == 1 and results["refresh_snapshot_requests"] == 1
    assert results["snapshot_bytes"] > 0 and results["snapshot_lookup_ns"] > 0
