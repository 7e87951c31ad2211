"""Publishing to the real S3 server and to the file:// store: delta, order, races, crashes, rollback."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import git
import pytest
import yaml

from faults import CRASH_SCRIPT, FaultAfter, Recording
from flagops.compile import compile_project
from flagops.errors import LockLost, PublishIncomplete
from flagops.head import parse_head
from flagops.layout import digest
from flagops.publish import (PublishError, PublishInProgress, PublishOptions, RaceLostError,
                             publish_environment)
from flagops.storage import FileStore, ObjectStore, Retry, S3Store, retrying
from flagops_client.evaluation import evaluate

ENV = "production"
SUMMARY_KEYS = ["environment", "revision", "previousRevision", "uploaded", "unchanged", "deleted", "bytes",
                "seconds"]
PLANS = ["free", "starter", "business", "enterprise"]


def tenant_list(n: int = 30, skip: tuple[str, ...] = ()) -> list[dict[str, str]]:
    tenants = [{"id": f"t_{i:04d}", "slug": f"tenant-{i:02d}", "plan": PLANS[i % 4]} for i in range(n)]
    return [t for t in tenants if t["slug"] not in skip]


FLAGS = {
    "alpha": {"key": "alpha", "description": "Alpha", "state": "rollout", "pct": 30},
    "beta": {"key": "beta", "description": "Beta", "state": "on"},
    "gamma": {"key": "gamma", "description": "Gamma", "state": "targeted", "scope": {"plans": ["enterprise"]}},
}


class Project:
    """A flagops repository under git, built in the test."""

    def __init__(self, root: Path):
        self.root = root
        (root / "flags").mkdir(parents=True)
        (root / "tenants").mkdir()
        self.git = git.Repo.init(root)
        with self.git.config_writer() as cw:
            cw.set_value("user", "name", "Test").set_value("user", "email", "test@example.com")
        self.flags: dict[str, dict[str, Any]] = {}
        self.tenants: list[dict[str, str]] = []

    def set_flag(self, flag: dict[str, Any]) -> None:
        self.flags[flag["key"]] = flag
        (self.root / "flags" / f"{flag['key']}.yaml").write_text(yaml.safe_dump(flag, sort_keys=False))

    def set_tenants(self, tenants: list[dict[str, str]]) -> None:
        self.tenants = tenants
        (self.root / "tenants" / f"{ENV}.yaml").write_text(yaml.safe_dump(tenants, sort_keys=False))

    def commit(self, message: str) -> str:
        self.git.git.add("-A")
        self.git.index.commit(message)
        return self.git.head.commit.hexsha

    def compile(self, out: Path) -> Path:
        compile_project(self.root, environments=[ENV], out=out)
        return out


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path / "repo")
    for flag in FLAGS.values():
        p.set_flag(dict(flag))
    p.set_tenants(tenant_list())
    p.commit("initial flags")
    return p


@dataclass
class Target:
    url: str
    store: ObjectStore
    prefix: str

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def read(self, *parts: str) -> Optional[bytes]:
        got = self.store.get(self.key(*parts))
        return got[0] if got else None

    def bundles(self, env: str = ENV) -> dict[str, bytes]:
        base = self.key(env, "tenants") + "/"
        return {o.key[len(base):-len(".json")]: self.read(o.key[len(self.prefix) + 1:] if self.prefix else o.key)
                for o in self.store.list(base)}

    def manifest(self, env: str = ENV) -> Optional[dict[str, Any]]:
        data = self.read(env, "manifest.json")
        return json.loads(data) if data else None

    def head(self, env: str = ENV):
        data = self.read(env, "head.json")
        return parse_head(data, env) if data else None


@pytest.fixture(params=["file", "s3"])
def target(request, tmp_path: Path) -> Target:
    if request.param == "file":
        root = tmp_path / "published"
        return Target(root.as_uri(), FileStore(root), "")
    request.getfixturevalue("s3_env")
    bucket = request.getfixturevalue("s3_bucket")
    return Target(f"s3://{bucket}/flags", S3Store(str(bucket)), "flags")


def assert_matches(target: Target, out: Path, env: str = ENV) -> None:
    """The published state equals the compiled output, byte for byte, with nothing extra."""
    local = out / env
    assert target.read(env, "manifest.json") == (local / "manifest.json").read_bytes()
    for name in ("rules.json", "snapshot.json"):
        assert target.read(env, name) == (local / name).read_bytes(), name
    assert target.read(env, "catalog.json") == (out / "catalog.json").read_bytes()
    head = target.head(env)
    manifest = json.loads((local / "manifest.json").read_bytes())
    assert head is not None and head.revision == manifest["revision"]
    assert head.snapshot == digest((local / "snapshot.json").read_bytes())
    remote = target.bundles(env)
    expected = {p.stem: p.read_bytes() for p in (local / "tenants").glob("*.json")}
    assert sorted(remote) == sorted(expected)
    for slug, data in expected.items():
        assert remote[slug] == data, slug


def assert_consistent(target: Target, old: Optional[Path], new: Path, env: str = ENV) -> None:
    """A reader following the published manifest finds every bundle, each a whole old or new bundle."""
    manifest = target.manifest(env)
    assert manifest is not None
    remote = target.bundles(env)
    allowed: dict[str, set[str]] = {}
    for out in (old, new):
        if out is None:
            continue
        for slug, d in json.loads((out / env / "manifest.json").read_bytes())["tenants"].items():
            allowed.setdefault(slug, set()).add(d)
    for slug in manifest["tenants"]:
        assert slug in remote, f"the manifest names {slug} but its bundle is missing"
        assert digest(remote[slug]) in allowed[slug], f"{slug} holds bytes of neither revision"


def cli_publish(flagops, project: Project, target: Target, out: Path, *extra: str):
    run = flagops("publish", "--env", ENV, "--target", target.url, "--from", str(out), "--format", "json",
                  *extra, root=project.root)
    summary = json.loads(run.out) if run.code == 0 else None
    return run, summary


def flipped(before: dict[str, Any], after: dict[str, Any], tenants: list[dict[str, str]]) -> int:
    return sum(evaluate(before, t, ENV) != evaluate(after, t, ENV) for t in tenants)


# --------------------------------------------------------------------------------------------


def test_first_publish_uploads_everything_then_a_rerun_nothing(flagops, project, target, tmp_path):
    out = project.compile(tmp_path / "dist")
    run, summary = cli_publish(flagops, project, target, out)
    assert run.code == 0, run.err
    assert list(summary) == SUMMARY_KEYS
    assert summary["environment"] == ENV and summary["revision"] == project.git.head.commit.hexsha
    assert (summary["uploaded"], summary["unchanged"], summary["deleted"]) == (30, 0, 0)
    assert summary["previousRevision"] is None and summary["bytes"] > 0
    assert_matches(target, out)
    # No lock or temporary object is left behind.
    assert target.read(ENV, ".publish-lock.json") is None

    run, summary = cli_publish(flagops, project, target, out)
    assert run.code == 0, run.err
    assert (summary["uploaded"], summary["unchanged"], summary["deleted"]) == (0, 30, 0)
    assert summary["previousRevision"] == summary["revision"]


@pytest.mark.parametrize("target", ["file"], indirect=True)  # the S3 store: the tests around
def test_one_flag_change_uploads_only_the_flipped_bundles(flagops, project, target, tmp_path):
    cli_publish(flagops, project, target, project.compile(tmp_path / "v1"))
    before = dict(project.flags["alpha"])
    after = {**before, "pct": 60}
    project.set_flag(after)
    project.commit("alpha to 60%")
    out = project.compile(tmp_path / "v2")
    expected = flipped(before, after, project.tenants)
    assert 0 < expected < 30
    run, summary = cli_publish(flagops, project, target, out)
    assert run.code == 0, run.err
    assert summary["uploaded"] == expected and summary["unchanged"] == 30 - expected
    assert_matches(target, out)


@pytest.mark.parametrize("target", ["file"], indirect=True)  # the S3 store: the tests around
def test_a_removed_tenant_bundle_is_deleted(flagops, project, target, tmp_path):
    cli_publish(flagops, project, target, project.compile(tmp_path / "v1"))
    project.set_tenants(tenant_list(skip=("tenant-07",)))
    project.commit("tenant-07 left")
    out = project.compile(tmp_path / "v2")
    run, summary = cli_publish(flagops, project, target, out)
    assert run.code == 0, run.err
    assert (summary["uploaded"], summary["unchanged"], summary["deleted"]) == (0, 29, 1)
    assert "tenant-07" not in target.bundles()
    assert_matches(target, out)


def test_objects_are_json_with_the_configured_cache_control(flagops, project, s3_env, s3_bucket, tmp_path):
    out = project.compile(tmp_path / "dist")
    run = flagops("publish", "--env", ENV, "--target", f"s3://{s3_bucket}/p", "--from", str(out),
                  "--cache-control", "max-age=15", root=project.root)
    assert run.code == 0, run.err
    assert "30 bundle(s) uploaded" in run.err
    for key in ("p/production/tenants/tenant-01.json", "p/production/manifest.json", "p/production/catalog.json",
                "p/production/snapshot.json"):
        head = s3_bucket.client.head_object(Bucket=s3_bucket, Key=key)
        assert head["ContentType"] == "application/json" and head["CacheControl"] == "max-age=15", key
    # The head is polled for changes: no cache may hold it.
    head = s3_bucket.client.head_object(Bucket=s3_bucket, Key="p/production/head.json")
    assert head["CacheControl"] == "no-cache"
    body = s3_bucket.client.get_object(Bucket=s3_bucket, Key="p/production/catalog.json")["Body"].read()
    assert body == (out / "catalog.json").read_bytes()
    assert "p/catalog.json" not in {o["Key"] for o in s3_bucket.client.list_objects_v2(Bucket=s3_bucket)["Contents"]}


@pytest.mark.parametrize("target", ["file"], indirect=True)  # the S3 store: the tests around
def test_dry_run_writes_nothing(flagops, project, target, tmp_path):
    out = project.compile(tmp_path / "dist")
    run, summary = cli_publish(flagops, project, target, out, "--dry-run")
    assert run.code == 0, run.err
    assert summary["uploaded"] == 30
    assert target.manifest() is None and target.bundles() == {}
    text = flagops("publish", "--env", ENV, "--target", target.url, "--from", str(out), "--dry-run",
                   root=project.root)
    assert text.code == 0 and "would publish" in text.err and "upload: tenant-00" in text.err


def test_a_corrupted_dist_is_refused(flagops, project, tmp_path):
    target = Target((tmp_path / "pub").as_uri(), FileStore(tmp_path / "pub"), "")
    out = project.compile(tmp_path / "dist")
    bundle = out / ENV / "tenants" / "tenant-03.json"
    bundle.write_bytes(bundle.read_bytes().replace(b'"beta":true', b'"beta":false'))
    run, _ = cli_publish(flagops, project, target, out)
    assert run.code == 1
    assert "does not match the manifest digest (tenant-03)" in run.err
    assert target.manifest() is None and target.bundles() == {}


def test_publish_without_from_compiles_the_repository(flagops, project, tmp_path):
    root = tmp_path / "pub"
    run = flagops("publish", "--env", ENV, "--target", root.as_uri(), "--format", "json", root=project.root)
    assert run.code == 0, run.err
    assert json.loads(run.out)["uploaded"] == 30
    assert_matches(Target(root.as_uri(), FileStore(root), ""), project.compile(tmp_path / "check"))


@pytest.mark.parametrize("target", ["file"], indirect=True)  # the S3 store: the tests around
def test_an_older_revision_is_refused_and_rollback_restores_it(flagops, project, target, tmp_path):
    v1 = project.compile(tmp_path / "v1")
    sha1 = project.git.head.commit.hexsha
    assert cli_publish(flagops, project, target, v1)[0].code == 0
    project.set_flag({**FLAGS["beta"], "state": "off"})
    sha2 = project.commit("beta off")
    v2 = project.compile(tmp_path / "v2")
    assert cli_publish(flagops, project, target, v2)[0].code == 0

    run, _ = cli_publish(flagops, project, target, v1)
    assert run.code == 1
    assert "ancestor of the published revision" in run.err and "flagops rollback" in run.err
    assert target.manifest()["revision"] == sha2
    assert_matches(target, v2)

    run = flagops("rollback", "--env", ENV, "--target", target.url, "--to", sha1[:10], "--format", "json",
                  root=project.root)
    assert run.code == 0, run.err
    summary = json.loads(run.out)
    assert (summary["revision"], summary["previousRevision"], summary["uploaded"]) == (sha1, sha2, 30)
    assert_matches(target, v1)
    assert not [w for w in project.git.git.worktree("list").splitlines()[1:]]  # the temporary checkout is gone

    # Moving forward again needs no flag.
    assert cli_publish(flagops, project, target, v2)[0].code == 0
    assert target.manifest()["revision"] == sha2


@pytest.mark.parametrize("target", ["file"], indirect=True)  # the S3 store: the tests around
def test_allow_rollback_publishes_an_older_revision(flagops, project, target, tmp_path):
    v1 = project.compile(tmp_path / "v1")
    project.set_flag({**FLAGS["beta"], "state": "off"})
    project.commit("beta off")
    assert cli_publish(flagops, project, target, project.compile(tmp_path / "v2"))[0].code == 0
    run, summary = cli_publish(flagops, project, target, v1, "--allow-rollback")
    assert run.code == 0, run.err
    assert_matches(target, v1)


@pytest.mark.parametrize("target", ["file"], indirect=True)  # the S3 store: the tests around
def test_unknown_and_diverged_remote_revisions_are_refused(flagops, project, target, tmp_path):
    other = Project(tmp_path / "other")
    for flag in FLAGS.values():
        other.set_flag(dict(flag))
    other.set_tenants(tenant_list())
    other.commit("another history")
    assert cli_publish(flagops, other, target, other.compile(tmp_path / "o"))[0].code == 0

    run, _ = cli_publish(flagops, project, target, project.compile(tmp_path / "p"))
    assert run.code == 1
    assert "not in the local history" in run.err and "git fetch" in run.err and "--allow-rollback" in run.err

    # Diverged: the published revision is on a branch this one does not contain.
    base = project.git.head.commit.hexsha
    project.set_flag({**FLAGS["beta"], "state": "off"})
    project.commit("beta off")
    published = project.compile(tmp_path / "b1")
    assert cli_publish(flagops, project, target, published, "--allow-rollback")[0].code == 0
    project.git.git.checkout("-q", "-b", "side", base)
    project.set_flag({**FLAGS["alpha"], "pct": 5})
    project.commit("alpha 5")
    run, _ = cli_publish(flagops, project, target, project.compile(tmp_path / "b2"))
    assert run.code == 1 and "diverged" in run.err
    assert_matches(target, published)


def test_two_publishes_started_together_exactly_one_moves_the_manifest(flagops, project, target, tmp_path):
    v1 = project.compile(tmp_path / "v1")
    assert cli_publish(flagops, project, target, v1)[0].code == 0
    project.set_flag({**FLAGS["beta"], "state": "off"})
    project.commit("beta off")
    v2 = project.compile(tmp_path / "v2")
    project.set_flag({**FLAGS["gamma"], "state": "on"})
    project.commit("gamma on")
    v3 = project.compile(tmp_path / "v3")

    barrier = threading.Barrier(2)
    someone_finished = threading.Event()
    outcomes: dict[str, Any] = {}

    def hold(done: int, total: int, what: str) -> None:
        if done == 1:  # mid-upload: keep the lock until the other run has given up (or 10 s)
            someone_finished.wait(10)

    def run(name: str, out: Path) -> None:
        options = PublishOptions(progress=hold, workers=2)
        barrier.wait()
        try:
            outcomes[name] = publish_environment(out, ENV, target.store, target.prefix, root=project.root,
                                                 options=options)
        except PublishError as exc:
            outcomes[name] = exc
        finally:
            someone_finished.set()

    threads = [threading.Thread(target=run, args=(n, o)) for n, o in (("v2", v2), ("v3", v3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [n for n, o in outcomes.items() if not isinstance(o, Exception)]
    lost = [o for o in outcomes.values() if isinstance(o, Exception)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], (PublishInProgress, RaceLostError))
    assert "in progress" in str(lost[0]) and "changed nothing" in str(lost[0])
    assert_matches(target, v2 if won == ["v2"] else v3)


def test_a_manifest_changed_mid_publish_loses_the_race(flagops, project, target, tmp_path):
    """A writer that ignores the lock (an older tool, a hand edit) still cannot be overwritten."""
    v1 = project.compile(tmp_path / "v1")
    assert cli_publish(flagops, project, target, v1)[0].code == 0
    project.set_flag({**FLAGS["beta"], "state": "off"})
    project.commit("beta off")
    v2 = project.compile(tmp_path / "v2")
    foreign = b'{"environment":"production","revision":"elsewhere","tenants":{}}\n'

    def meddle(done: int, total: int, what: str) -> None:
        if done == 1:
            target.store.put(target.key(ENV, "manifest.json"), foreign)

    with pytest.raises(RaceLostError, match="another publish changed"):
        publish_environment(v2, ENV, target.store, target.prefix, root=project.root,
                            options=PublishOptions(progress=meddle, workers=1, allow_rollback=True))
    assert target.read(ENV, "manifest.json") == foreign
    # The next run finds the bundles the lost run uploaded already in the store (by their ETags).
    target.store.put(target.key(ENV, "manifest.json"), (v1 / ENV / "manifest.json").read_bytes())
    result = publish_environment(v2, ENV, target.store, target.prefix, root=project.root)
    assert result.uploaded == [] and result.unchanged == 30
    assert_matches(target, v2)


def test_the_delta_is_what_the_store_holds_not_what_the_manifest_claims(project, target, tmp_path):
    """Bundles overwritten behind the manifest's back (an overlapping run) are found and repaired."""
    v1 = project.compile(tmp_path / "v1")
    publish_environment(v1, ENV, target.store, target.prefix, root=project.root)
    for slug in ("tenant-02", "tenant-11", "tenant-29"):
        target.store.put(target.key(ENV, "tenants", f"{slug}.json"), b'{"stale":true}\n')
    warnings: list[str] = []
    result = publish_environment(v1, ENV, target.store, target.prefix, root=project.root,
                                 options=PublishOptions(warn=warnings.append))
    assert result.uploaded == ["tenant-02", "tenant-11", "tenant-29"] and result.unchanged == 27
    assert any("3 bundle(s) in the store differ from the published manifest" in w for w in warnings)
    assert_matches(target, v1)


def _crash(project: Project, target: Target, out: Path, after: int) -> subprocess.CompletedProcess:
    """A publish process killed abruptly (os._exit) before its upload number ``after + 1``."""
    return subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(out), ENV, target.url, str(project.root),
                           str(after)], capture_output=True, text=True, timeout=60)


class HeadWatcher:
    """A reader polling the head (and then the manifest) until stopped: what a client would see."""

    def __init__(self, target: Target):
        self.target, self.seen = target, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            head = self.target.head()
            manifest = self.target.manifest()
            if head is not None:
                self.seen.append((head, manifest["revision"] if manifest else None))
            self._stop.wait(0.01)

    def __enter__(self) -> "HeadWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def check(self, order: list[str]) -> None:
        """The sequence never goes down; a head never names a revision the manifest has not reached."""
        sequences = [h.sequence for h, _ in self.seen]
        assert sequences == sorted(sequences), sequences
        for head, manifest_revision in self.seen:
            assert order.index(manifest_revision) >= order.index(head.revision)


@pytest.mark.parametrize("target, crash_after, then", [("file", 1, "rerun"), ("s3", 1, "rerun"),
                                                     ("s3", 17, "revert")], indirect=["target"])
def test_a_killed_publish_never_names_a_missing_bundle_and_the_kill_is_out_first(project, target, tmp_path,
                                                                                  crash_after, then):
    v1 = project.compile(tmp_path / "v1")
    publish_environment(v1, ENV, target.store, target.prefix, root=project.root)
    v1_digests = json.loads((v1 / ENV / "manifest.json").read_bytes())["tenants"]
    first = target.head()
    assert first.sequence == 1 and first.off == () and first.revision == project.git.head.commit.hexsha
    project.set_flag({**FLAGS["beta"], "state": "off"})  # a kill: every bundle changes
    project.set_tenants(tenant_list(n=32))  # and two tenants arrive
    sha2 = project.commit("beta off, two new tenants")
    v2 = project.compile(tmp_path / "v2")

    with HeadWatcher(target) as watcher:
        crashed = _crash(project, target, v2, crash_after)
        assert crashed.returncode == 70, crashed.stderr
        assert target.manifest()["tenants"] == v1_digests
        assert_consistent(target, v1, v2)
        changed = sum(digest(b) != v1_digests.get(s) for s, b in target.bundles().items())
        assert changed == crash_after  # exactly the uploads before the crash, one at a time
        # The kill was in the head before the first bundle: readers already apply it.
        interim = target.head()
        assert (interim.sequence, interim.off, interim.revision) == (2, ("beta",), first.revision)

        options = PublishOptions(warn=(warnings := []).append)
        if then == "rerun":
            publish_environment(v2, ENV, target.store, target.prefix, root=project.root, options=options)
            assert_matches(target, v2)
            final, order = target.head(), [first.revision, sha2]
            assert (final.sequence, final.off, final.revision) == (3, ("beta",), sha2)
        else:
            # Revert: the bundles the killed run overwrote are found by their bytes and uploaded again.
            project.set_flag(dict(FLAGS["beta"]))
            project.set_tenants(tenant_list())
            sha3 = project.commit("revert")
            v3 = project.compile(tmp_path / "v3")
            publish_environment(v3, ENV, target.store, target.prefix, root=project.root, options=options)
            assert_matches(target, v3)
            final, order = target.head(), [first.revision, sha2, sha3]
            assert (final.sequence, final.off, final.revision) == (3, (), sha3)
    assert any("took over the lock of an interrupted publish" in w for w in warnings)
    assert target.read(ENV, ".publish-lock.json") is None
    watcher.check(order)


def test_the_kill_head_is_in_the_store_before_the_first_bundle(project, target, tmp_path):
    v1 = project.compile(tmp_path / "v1")
    publish_environment(v1, ENV, target.store, target.prefix, root=project.root)
    project.set_flag({**FLAGS["beta"], "state": "off"})
    project.commit("beta off")
    v2 = project.compile(tmp_path / "v2")
    store = Recording(target.store)
    result = publish_environment(v2, ENV, store, target.prefix, root=project.root)
    assert result.killed == ("beta",)
    keys = [k.rsplit("/", 2)[-2:] for k, _ in store.puts if not k.endswith(".publish-lock.json")]
    names = ["tenants" if d == "tenants" else f for d, f in keys]
    first_bundle = names.index("tenants")
    assert names[:first_bundle] == ["head.json"]
    interim = parse_head(store.puts[[k for k, _ in store.puts].index(target.key(ENV, "head.json"))][1], ENV)
    assert interim.off == ("beta",) and interim.revision == json.loads((v1 / ENV / "manifest.json").read_bytes())["revision"]
    # Then the rest, the manifest, and the final head last.
    assert names[-2:] == ["manifest.json", "head.json"] and "snapshot.json" in names[first_bundle:]
    assert_matches(target, v2)


@pytest.mark.parametrize("target", ["file"], indirect=True)  # the S3 store: the tests around
def test_a_publish_that_changes_nothing_leaves_the_head_alone_but_repairs_a_wrong_one(project, target, tmp_path):
    out = project.compile(tmp_path / "dist")
    publish_environment(out, ENV, target.store, target.prefix, root=project.root)
    before = target.read(ENV, "head.json")
    store = Recording(target.store)
    result = publish_environment(out, ENV, store, target.prefix, root=project.root)
    assert result.uploaded == [] and [k for k, _ in store.puts if not k.endswith(".publish-lock.json")] == []
    assert target.read(ENV, "head.json") == before
    # A run cut off after its manifest left an older head: the next run repairs it, with a higher sequence.
    head = target.head()
    stale = head.next(revision=None, off=("alpha",))
    target.store.put(target.key(ENV, "head.json"), stale.to_bytes())
    publish_environment(out, ENV, target.store, target.prefix, root=project.root)
    repaired = target.head()
    assert repaired.same_content(head) and repaired.sequence == stale.sequence + 1


def test_the_server_stopped_mid_publish(project, tmp_path, s3_env):
    import s3server

    data = tmp_path / "s3data"
    state = s3server.launch(data)
    try:
        store = S3Store("crash", endpoint_url=state.endpoint_url)
        store.client.create_bucket(Bucket="crash")
        t = Target("s3://crash/f", store, "f")
        v1 = project.compile(tmp_path / "v1")
        publish_environment(v1, ENV, store, "f", root=project.root)
        sha1 = project.git.head.commit.hexsha
        project.set_flag({**FLAGS["beta"], "state": "off"})
        project.commit("beta off")
        v2 = project.compile(tmp_path / "v2")

        def kill_server() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.pid, 9)
            try:
                os.waitpid(state.pid, 0)
            except ChildProcessError:  # not our child: wait until it is gone
                while os.path.exists(f"/proc/{state.pid}"):
                    os.sched_yield()

        options = PublishOptions(workers=2, retry=Retry(attempts=2, base_delay=0.05))
        with pytest.raises(PublishIncomplete) as info:
            publish_environment(v2, ENV, FaultAfter(store, 5, kill_server), "f", root=project.root, options=options)
        message = str(info.value)
        assert "may already hold revision" in message and f"still name revision {sha1}" in message
        assert "the head names beta off" in message and "completes the work" in message
        assert "nothing in the store was changed" not in message

        state = s3server.launch(data, fresh=False, ports=state.ports)
        # Back from a crash, the server answers 500 until its volumes have re-registered.
        retrying(lambda: store.get("f/production/manifest.json"), Retry(attempts=60, base_delay=0.3, max_delay=0.3))
        assert_consistent(t, v1, v2)
        assert t.manifest()["revision"] == sha1
        assert t.head().off == ("beta",) and t.head().revision == sha1
        publish_environment(v2, ENV, store, "f", root=project.root)
        assert_matches(t, v2)
        assert t.head().sequence == 3
    finally:
        s3server.terminate(state.pid, timeout=2, ports=state.ports)  # its data is thrown away: no need to wait long


class IgnoresConditions(FileStore):
    """Stands in for a store (older Ceph) that accepts If-Match/If-None-Match and ignores them."""

    def put(self, key: str, data: bytes, **kw: Any) -> str:
        kw.pop("if_match", None)
        kw.pop("if_none_match", None)
        return super().put(key, data, **kw)


def test_a_store_ignoring_conditional_writes_is_detected(project, tmp_path):
    out = project.compile(tmp_path / "dist")
    store = IgnoresConditions(tmp_path / "ceph")
    with pytest.raises(PublishError, match="ignores conditional writes") as info:
        publish_environment(out, ENV, store, "", root=project.root)
    assert "--no-conditional-writes" in str(info.value)
    assert list(store.list("")) == []  # nothing was changed
    warnings: list[str] = []
    result = publish_environment(out, ENV, store, "", root=project.root,
                                 options=PublishOptions(conditional_writes=False, warn=warnings.append))
    assert len(result.uploaded) == 30 and not result.conditional
    assert any("concurrency group is the only guard" in w for w in warnings)
    assert_matches(Target(store.url, store, ""), out)


@pytest.mark.parametrize("target", ["file"], indirect=True)  # the S3 store: the tests around
def test_no_conditional_writes_says_so(flagops, project, target, tmp_path):
    out = project.compile(tmp_path / "dist")
    run = flagops("publish", "--env", ENV, "--target", target.url, "--from", str(out), "--no-conditional-writes",
                  root=project.root)
    assert run.code == 0, run.err
    assert "concurrency group" in run.err
    assert_matches(target, out)


def test_bucket_policy_opens_bundles_and_heads_only(flagops, project, s3_server, s3_env, s3_bucket, tmp_path):
    import urllib.error
    import urllib.request

    run = flagops("bucket-policy", "--bucket", str(s3_bucket), "--prefix", "flags")
    assert run.code == 0
    policy = json.loads(run.out)
    assert policy["Statement"][0]["Resource"] == [f"arn:aws:s3:::{s3_bucket}/flags/*/tenants/*",
                                                  f"arn:aws:s3:::{s3_bucket}/flags/*/head.json"]
    s3_bucket.client.put_bucket_policy(Bucket=s3_bucket, Policy=run.out)
    out = project.compile(tmp_path / "dist")
    t = Target(f"s3://{s3_bucket}/flags", S3Store(str(s3_bucket)), "flags")
    assert cli_publish(flagops, project, t, out)[0].code == 0

    def anonymous(key: str) -> int:
        try:
            with urllib.request.urlopen(f"{s3_server.endpoint_url}/{s3_bucket}/{key}", timeout=10) as resp:
                assert resp.read() == t.read(key[len("flags/"):])
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert anonymous("flags/production/tenants/tenant-04.json") == 200
    assert anonymous("flags/production/head.json") == 200
    for private in ("flags/production/manifest.json", "flags/production/rules.json",
                    "flags/production/snapshot.json", "flags/production/catalog.json"):
        assert anonymous(private) == 403, private


def test_publish_directory_uploads_a_site_under_dashboard(tmp_path):
    from flagops.publish import publish_directory
    from flagops.errors import UsageError

    site = tmp_path / "site"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_text("<h1>flags</h1>")
    (site / "assets" / "app.js").write_text("1;")
    store = FileStore(tmp_path / "pub")
    assert publish_directory(store, "", site) == 2
    assert store.get("dashboard/index.html")[0] == b"<h1>flags</h1>"
    assert store.get("dashboard/assets/app.js")[0] == b"1;"
    (site / "tenants").mkdir()
    (site / "tenants" / "acme.html").write_text("x")
    with pytest.raises(UsageError, match="public under the bucket policy"):
        publish_directory(store, "", site)


def test_a_live_lock_of_another_machine_is_respected_until_it_is_not_renewed(project, tmp_path):
    import time

    out = project.compile(tmp_path / "dist")
    store = FileStore(tmp_path / "pub")
    # Another machine's lock, its clock far ahead: only its age by the store's clock counts.
    lock = {"owner": "x", "host": "ci-runner-7", "node": "ci-runner-7/other-boot/1", "pid": 1,
            "started": time.time() + 3600, "ttl": 0.3, "renewals": 0}
    store.put(f"{ENV}/.publish-lock.json", json.dumps(lock).encode())
    with pytest.raises(PublishInProgress, match="host ci-runner-7, pid 1"):
        publish_environment(out, ENV, store, "", root=project.root)
    assert store.get(f"{ENV}/manifest.json") is None

    time.sleep(0.4)  # not renewed for longer than its TTL: that run is dead
    warnings: list[str] = []
    publish_environment(out, ENV, store, "", root=project.root, options=PublishOptions(warn=warnings.append))
    assert any("took over the lock" in w for w in warnings)
    assert_matches(Target(store.url, store, ""), out)
    assert store.get(f"{ENV}/.publish-lock.json") is None


def test_a_live_publish_renews_its_lock_and_a_run_that_lost_it_stops_at_once(project, target, tmp_path):
    import time

    out = project.compile(tmp_path / "dist")
    lock_key = target.key(ENV, ".publish-lock.json")
    refused: list[Exception] = []

    renewals: list[int] = []

    def slow(done: int, total: int, what: str) -> None:
        time.sleep(0.04)  # 30 uploads: 1.2 s, more than the TTL, so it lives by its renewals
        if done == 15:
            renewals.append(json.loads(target.read(ENV, ".publish-lock.json"))["renewals"])
            with pytest.raises(PublishInProgress) as info:  # the renewed lock is not a dead run's
                publish_environment(out, ENV, target.store, target.prefix, root=project.root)
            refused.append(info.value)

    # A TTL of 1 s leaves half a second for one renewal (one every 1/6 s) on a loaded machine.
    options = PublishOptions(progress=slow, workers=1, lock_ttl=1.0)
    publish_environment(out, ENV, target.store, target.prefix, root=project.root, options=options)
    assert refused and target.read(ENV, ".publish-lock.json") is None
    assert renewals and renewals[0] >= 1
    assert_matches(target, out)

    project.set_flag({**FLAGS["beta"], "state": "off"})
    project.commit("beta off")
    v2 = project.compile(tmp_path / "v2")
    taken = {"done": 0}

    def steal(done: int, total: int, what: str) -> None:
        taken["done"] = done
        if done == 2:  # another run takes the lock over (as a run with a wrong idea of the TTL would)
            target.store.put(lock_key, json.dumps({"owner": "thief", "ttl": 60}).encode())
        time.sleep(0.05)

    with pytest.raises(LockLost, match="stopped uploading") as info:
        publish_environment(v2, ENV, target.store, target.prefix, root=project.root,
                            options=PublishOptions(progress=steal, workers=1, lock_ttl=0.6))
    assert taken["done"] <= 10  # within a few renewal intervals (0.1 s each) of the theft, not at the end
    assert "may already hold revision" in str(info.value)
    assert target.manifest()["revision"] != json.loads((v2 / ENV / "manifest.json").read_bytes())["revision"]
    assert json.loads(target.read(ENV, ".publish-lock.json"))["owner"] == "thief"  # left to its owner


class StallingRenewals(FileStore):
    """A store that stops answering the lock's renewals for a while (every other write goes through)."""

    def __init__(self, root: Path, stall: float):
        super().__init__(root)
        self.stall = stall

    def put(self, key: str, data: bytes, **kw: Any) -> str:
        if key.endswith(".publish-lock.json") and kw.get("if_match"):
            import time
            time.sleep(self.stall)
        return super().put(key, data, **kw)


def test_a_run_whose_lock_cannot_be_renewed_stops_and_says_why(project, tmp_path):
    import time

    out = project.compile(tmp_path / "dist")
    store = StallingRenewals(tmp_path / "pub", stall=0.8)
    with pytest.raises(LockLost, match="could not be renewed for 0.3s") as info:
        publish_environment(out, ENV, store, "", root=project.root,
                            options=PublishOptions(progress=lambda *_: time.sleep(0.05), workers=2, lock_ttl=0.6))
    assert "took over" not in str(info.value)  # every upload refused after the first names the same cause
    assert store.get(f"{ENV}/manifest.json") is None


@pytest.mark.parametrize("name, edit", [
    ("rules.json", lambda d: {**d, "flags": {**d["flags"], "alpha": {**d["flags"]["alpha"], "state": "maybe"}}}),
    ("catalog.json", lambda d: {**d, "flags": []}),
    ("snapshot.json", lambda d: {**d, "tenants": {**d["tenants"], "tenant-01": "not base64!"}}),
    ("manifest.json", lambda d: {**d, "revision": 42}),
    ("tenants/tenant-05.json", lambda d: {**d, "flags": {**d["flags"], "beta": "yes"}}),
])
def test_publish_from_checks_every_file_against_its_schema_first(flagops, project, tmp_path, name, edit):
    target = Target((tmp_path / "pub").as_uri(), FileStore(tmp_path / "pub"), "")
    out = project.compile(tmp_path / "dist")
    path = out / name if name == "catalog.json" else out / ENV / name
    path.write_bytes(json.dumps(edit(json.loads(path.read_bytes()))).encode())
    if name.startswith("tenants/"):  # consistent with the manifest: only the schema can refuse it
        manifest = json.loads((out / ENV / "manifest.json").read_bytes())
        manifest["tenants"]["tenant-05"] = digest(path.read_bytes())
        (out / ENV / "manifest.json").write_bytes(json.dumps(manifest).encode())
    run, _ = cli_publish(flagops, project, target, out)
    assert run.code == 1, run.err
    assert f"{path.name}:1:1: error:" in run.err and "nothing was uploaded" in run.err
    assert list(target.store.list("")) == []
