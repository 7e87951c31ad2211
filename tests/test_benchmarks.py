"""The benchmark code runs, and the fast compile paths equal the reference semantics on its data.

Timings are never asserted here (``make bench`` measures); these tests check that the
generated data compiles to exactly the bytes of the unoptimised reference (``evaluate`` +
``json.dumps``), that a recompile after one change rewrites only the bundles whose bytes
change and still equals a compile from scratch, and that the caches never change a result.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flagops import bundles, compile_state, layout, matrix, parallel
from flagops.compile import compile_project
from flagops.matrix import BucketCache, TenantIndex, enabled_tenants
from flagops_client.evaluation import bucket, evaluate, evaluate_all

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import generate  # noqa: E402
import run as bench_run  # noqa: E402

ENV = "production"


def reference_bundle(flags: dict[str, Any], tenant: dict[str, Any]) -> bytes:
    doc = {"schemaVersion": 1, "environment": ENV, "tenant": tenant["slug"],
           "flags": evaluate_all(flags, tenant, ENV)}
    return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")


def tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def stats(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.iterdir()}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bench") / "repo"
    return dict(generate.write_repo(root, 3000, 60, seed=7, environment=ENV), root=root)


def test_generator_is_seeded_valid_and_realistic(tmp_path: Path, data: dict[str, Any]) -> None:
    again = generate.make_tenants(3000, 7)
    assert again == data["tenants"]
    plans = [t["plan"] for t in again]
    assert plans.count("free") > plans.count("starter") > plans.count("business") > plans.count("enterprise")
    assert 0.15 < sum("partnerSlug" in t for t in again) / len(again) < 0.35
    states = {f["state"] for f in data["flags"].values()}
    assert states == {"off", "on", "targeted", "rollout"}
    assert any(f.get("scope", {}).get("tenantSlugs") for f in data["flags"].values())
    from flagops.validation import load_and_validate

    _, _, result = load_and_validate(data["root"])
    assert result.errors == []


def test_bundles_are_byte_identical_to_the_reference(tmp_path: Path, data: dict[str, Any]) -> None:
    out = tmp_path / "out"
    compile_project(data["root"], out=out)
    flags, tenants = data["flags"], data["tenants"]
    manifest = json.loads((out / ENV / "manifest.json").read_bytes())
    assert len(manifest["tenants"]) == len(tenants)
    for tenant in tenants[::7]:  # a sample of ~430 tenants
        expected = reference_bundle(flags, tenant)
        got = (out / ENV / "tenants" / f"{tenant['slug']}.json").read_bytes()
        assert got == expected
        assert got == layout.dumps(layout.bundle_document(ENV, tenant["slug"], evaluate_all(flags, tenant, ENV)))
        assert manifest["tenants"][tenant["slug"]] == "sha256:" + hashlib.sha256(expected).hexdigest()
    # The manifest is spliced together by hand: it must still be the canonical dumps.
    assert (out / ENV / "manifest.json").read_bytes() == layout.dumps(manifest)


def test_enabled_tenants_equals_evaluate_on_benchmark_data(data: dict[str, Any]) -> None:
    tenants = data["tenants"][:800]
    index = TenantIndex.build(tenants)
    for key, flag in data["flags"].items():
        expected = {i for i, t in enumerate(tenants) if evaluate(flag, t, ENV)}
        assert enabled_tenants(key, flag, index, ENV) == expected, key


def test_parallel_paths_give_the_same_bytes(tmp_path: Path, data: dict[str, Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGOPS_JOBS", "1")
    compile_project(data["root"], out=tmp_path / "one")
    monkeypatch.setenv("FLAGOPS_JOBS", "2")
    monkeypatch.setattr(matrix, "PARALLEL_HASH_MIN", 100)
    monkeypatch.setattr(bundles, "CHUNK", 97)  # many pieces: the child and this process share them
    compile_project(data["root"], out=tmp_path / "two")
    assert tree(tmp_path / "one" / ENV) == tree(tmp_path / "two" / ENV)
    buckets = [compile_state.cache_paths(tmp_path / run, ENV)[0].read_bytes() for run in ("one", "two")]
    assert buckets[0] == buckets[1]  # every bucket hashed, whichever process hashed it


def test_share_runs_every_chunk_exactly_once_on_every_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGOPS_JOBS", "2")
    parent = os.getpid()
    runs = parallel.shared_array(120, np.int64)  # how often each chunk ran, in any process
    here = parallel.shared_array(120, np.int8)  # 1 when it ran in this process
    seen: list[int] = []

    def work(c: int) -> int:
        runs[c] += 1
        here[c] = os.getpid() == parent
        time.sleep(0.002)
        return 3

    after = parallel.shared_array(4, np.int64)  # chunks seen done by each closing task, then its runs

    def closing(i: int) -> Any:
        def task() -> None:
            time.sleep(0.01)
            after[i] = int(runs.sum())
            after[2 + i] += 1
        return task

    parallel.share(work, 120, seen.append, then=[closing(0), closing(1)])
    assert runs.tolist() == [1] * 120
    assert 0 < int(here.sum()) < 120  # both processes took chunks
    assert seen == sorted(seen) and seen[-1] == 360  # progress counts everyone's items, ending at all
    assert after.tolist() == [120, 120, 1, 1]  # each closing task ran once, after every chunk


def test_share_reports_a_failing_or_dying_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGOPS_JOBS", "2")
    parent = os.getpid()

    def failing(c: int) -> int:
        time.sleep(0.002)
        if os.getpid() != parent:
            raise ValueError("disk on fire")
        return 1

    with pytest.raises(RuntimeError, match="ValueError: disk on fire"):
        parallel.share(failing, 50)

    def dying(c: int) -> int:
        time.sleep(0.002)
        if os.getpid() != parent:
            os.kill(os.getpid(), 9)
        return 1

    with pytest.raises(RuntimeError, match="a worker process died .signal 9"):
        parallel.share(dying, 50)


def test_share_stops_the_workers_when_this_process_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGOPS_JOBS", "2")
    parent = os.getpid()
    runs = parallel.shared_array(400, np.int64)

    def work(c: int) -> int:
        if os.getpid() == parent and c > 3:
            raise KeyError("here")
        runs[c] += 1
        time.sleep(0.005)
        return 1

    with pytest.raises(KeyError):
        parallel.share(work, 400)
    done = int(runs.sum())
    time.sleep(0.05)
    assert int(runs.sum()) == done < 400  # the worker was stopped, not left running


@pytest.mark.parametrize("jobs", ["3", "4"])
def test_share_with_more_workers_runs_every_closing_task(monkeypatch: pytest.MonkeyPatch, jobs: str) -> None:
    monkeypatch.setenv("FLAGOPS_JOBS", jobs)
    runs = parallel.shared_array(40, np.int64)
    closed = parallel.shared_array(3, np.int64)

    def work(c: int) -> int:
        runs[c] += 1
        time.sleep(0.001 * (c % 5))  # uneven: workers end while others still have chunks
        return 1

    def closing(i: int) -> Any:
        def task() -> None:
            closed[i] = int(runs.sum())
        return task

    for _ in range(5):
        runs[:] = 0
        closed[:] = 0
        parallel.share(work, 40, then=[closing(0), closing(1), closing(2)])
        assert runs.tolist() == [1] * 40 and closed.tolist() == [40, 40, 40]


def test_share_with_more_workers_does_not_hang_when_one_dies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGOPS_JOBS", "3")
    parent = os.getpid()
    first = parallel.shared_array(1, np.int64)

    def work(c: int) -> int:
        time.sleep(0.002)
        if os.getpid() != parent and first[0] == 0:
            first[0] = os.getpid()
        if os.getpid() == first[0] and c > 3:
            os.kill(os.getpid(), 9)  # one worker dies holding a chunk; the other waits at the barrier
        return 1

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="died .signal 9"):
        parallel.share(work, 30, then=[lambda: None, lambda: None, lambda: None])
    assert time.monotonic() - started < 10


def test_share_workers_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "share.py"
    script.write_text(
        "import os, sys, time\n"
        "from flagops import parallel\n"
        "os.environ['FLAGOPS_JOBS'] = '3'\n"
        "def work(c):\n"
        "    with open(sys.argv[1], 'a') as fh:\n"
        "        fh.write(f'{os.getpid()}\\n')\n"
        "    time.sleep(0.05)\n"
        "    return 1\n"
        "parallel.share(work, 10_000)\n", encoding="utf-8")
    pids = tmp_path / "pids"
    proc = subprocess.Popen([sys.executable, str(script), str(pids)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(set(pids.read_text().split()) if pids.exists() else ()) < 3:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    workers = set(map(int, pids.read_text().split())) - {proc.pid}
    assert workers
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)  # no orphan goes on writing


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
def test_share_runs_no_work_before_its_gate_passes(monkeypatch: pytest.MonkeyPatch, jobs: str) -> None:
    monkeypatch.setenv("FLAGOPS_JOBS", jobs)
    prepared = parallel.shared_array(60, np.int64)
    worked = parallel.shared_array(60, np.int64)  # chunk -> gate state seen when its work ran
    passed = parallel.shared_array(1, np.int64)
    closed = parallel.shared_array(1, np.int64)

    def gate() -> None:
        time.sleep(0.05)  # the workers take and prepare chunks meanwhile
        passed[0] = 1

    def work(c: int) -> int:
        worked[c] = 1 + passed[0]
        return 1

    def closing() -> None:
        closed[0] = int((worked > 0).sum())

    parallel.share(work, 60, gate=gate, prepare=lambda c: prepared.__setitem__(c, 1), then=[closing])
    assert worked.tolist() == [2] * 60  # every chunk's work ran, each after the gate
    assert closed[0] == 60
    if jobs != "1":
        assert prepared.sum() > 0  # the workers used the wait

    worked[:] = 0

    def refusing() -> None:
        time.sleep(0.05)
        raise ValueError("invalid input")

    with pytest.raises(ValueError, match="invalid input"):
        parallel.share(work, 60, gate=refusing, prepare=lambda c: None, then=[closing])
    time.sleep(0.05)
    assert worked.sum() == 0  # nothing was written anywhere


def test_share_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGOPS_JOBS", "1")
    parent, order = os.getpid(), []
    parallel.share(lambda c: order.append((c, os.getpid() == parent)) or 1, 5)
    assert order == [(c, True) for c in range(5)]


def _change_one_rollout(root: Path, flags: dict[str, Any]) -> str:
    key = bench_run.rollout_key(flags)
    generate.set_pct(root, key, flags[key]["pct"] + 7)
    return key


def test_recompile_rewrites_only_changed_bundles_and_equals_a_fresh_compile(
        tmp_path: Path, data: dict[str, Any]) -> None:
    root = tmp_path / "repo"
    written = generate.write_repo(root, 2000, 40, seed=11, environment=ENV)
    project_flags, tenants = written["flags"], written["tenants"]
    out = tmp_path / "out"
    compile_project(root, out=out)
    bundles_dir = out / ENV / "tenants"
    before_stats, before = stats(bundles_dir), tree(bundles_dir)

    key = _change_one_rollout(root, project_flags)
    result = compile_project(root, out=out)
    after_stats, after = stats(bundles_dir), tree(bundles_dir)

    changed_bytes = {name for name in after if after[name] != before[name]}
    rewritten = {name for name in after_stats if after_stats[name] != before_stats[name]}
    assert changed_bytes, "a pct change of an unscoped rollout flips someone"
    assert rewritten == changed_bytes
    assert result.environments[0].rewritten == len(changed_bytes)
    # exactly the tenants whose reference value of that flag flipped
    new_flags = dict(project_flags, **{key: dict(project_flags[key], pct=project_flags[key]["pct"] + 7)})
    flipped = {f"{t['slug']}.json" for t in tenants
               if evaluate(project_flags[key], t, ENV) != evaluate(new_flags[key], t, ENV)}
    assert rewritten == flipped

    compile_project(root, out=tmp_path / "fresh")
    assert tree(out / ENV) == tree(tmp_path / "fresh" / ENV)


def test_recompile_after_inventory_changes_equals_a_fresh_compile(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    data = generate.write_repo(root, 600, 30, seed=3, environment=ENV)
    out = tmp_path / "out"
    compile_project(root, out=out)
    tenants = data["tenants"]
    moved = dict(tenants[5], plan="enterprise" if tenants[5]["plan"] != "enterprise" else "free")
    changed = tenants[1:5] + [moved] + tenants[6:] + [{"id": "t_new", "slug": "newcomer-gmbh", "plan": "business"}]
    (root / "tenants" / f"{ENV}.json").write_text(json.dumps(changed))
    result = compile_project(root, out=out)
    assert result.environments[0].rewritten < 50  # updated in place, not rebuilt
    assert not (out / ENV / "tenants" / f"{tenants[0]['slug']}.json").exists()
    compile_project(root, out=tmp_path / "fresh")
    assert tree(out / ENV) == tree(tmp_path / "fresh" / ENV)


def test_damaged_output_or_state_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    data = generate.write_repo(root, 400, 20, seed=5, environment=ENV)
    out = tmp_path / "out"
    compile_project(root, out=out)
    expected = tree(out / ENV)
    victim = out / ENV / "tenants" / f"{data['tenants'][0]['slug']}.json"
    victim.unlink()
    (out / ENV / "tenants" / "stray.json").write_text("{}")
    assert compile_project(root, out=out).environments[0].rewritten == 400  # full rebuild
    assert tree(out / ENV) == expected
    _, state = compile_state.cache_paths(out, ENV)
    state.write_bytes(state.read_bytes()[:-10])  # truncated: its checksum fails
    assert compile_project(root, out=out).environments[0].rewritten == 400
    assert tree(out / ENV) == expected


def test_a_failed_in_place_update_leaves_the_previous_output(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    data = generate.write_repo(root, 1000, 20, seed=9, environment=ENV)
    out = tmp_path / "out"
    compile_project(root, out=out)
    before = tree(out / ENV)
    _change_one_rollout(root, data["flags"])
    real_replace, calls = os.replace, []

    def failing_replace(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(bundles.os, "replace", failing_replace)
    with pytest.raises(OSError):
        compile_project(root, out=out)
    monkeypatch.setattr(bundles.os, "replace", real_replace)
    assert tree(out / ENV) == before
    assert not [p for p in out.iterdir() if p.name.startswith(f".{ENV}.update-")]
    compile_project(root, out=out)
    compile_project(root, out=tmp_path / "fresh")
    assert tree(out / ENV) == tree(tmp_path / "fresh" / ENV)


def test_bucket_cache_follows_tenants_by_id_and_ignores_damage(tmp_path: Path) -> None:
    path = tmp_path / "buckets"
    cache = BucketCache(["a", "b", "c"])
    cache.ensure([("k", np.arange(3))])
    compile_state.save_buckets(cache, path, ["k"])
    loaded = compile_state.load_buckets(path, ["c", "x", "a"])
    assert loaded.columns["k"].tolist() == [bucket("c", "k"), 255, bucket("a", "k")]
    assert loaded.get("k", np.arange(3)).tolist() == [bucket(i, "k") for i in ("c", "x", "a")]
    assert loaded.hashed == 1  # only the new tenant
    path.write_bytes(path.read_bytes().replace(b'"a"', b'"z"'))
    assert compile_state.load_buckets(path, ["a", "b", "c"]).columns == {}


def test_benchmark_runner_on_a_tiny_size(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--sizes", "300x12", "--runs", "1",
         "--history-commits", "0", "--no-publish", "--peer-sample", "30", "--workdir", str(tmp_path),
         "--json", str(tmp_path / "rows.json")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| case |" in proc.stdout and "machine:" in proc.stdout
    rows = {r["case"].split(" ")[0]: r for r in json.loads((tmp_path / "rows.json").read_text())}
    assert {"baseline:", "1", "evaluation", "2"} <= set(rows)
    assert rows["1"]["runs"] == 1 and rows["1"]["median"] > 0
    recompile = next(r for r in json.loads((tmp_path / "rows.json").read_text()) if r["case"].startswith("2 "))
    assert "bundles rewritten" in recompile["notes"]
    assert [p.name for p in tmp_path.iterdir()] == ["rows.json"]  # the work directory was removed
