"""flagops kill --commit in a real git repository, and the break-glass kill that publishes at once."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import git
import pytest

TENANTS = "".join(f"- {{id: t_{i}, slug: s{i}, plan: {'business' if i % 2 else 'free'}}}\n" for i in range(40))

RAMP = """\
# yaml-language-server: $schema=../schema/flag.schema.json
key: ramp
description: Gradual rollout   # watch the error rate
owner: ops@dezky.eu
state: rollout
pct: 50
scope:
  plans: [business]   # paying first
"""

STEADY = """\
# yaml-language-server: $schema=../schema/flag.schema.json
key: steady
description: Always on
state: on
"""


def make_repo(root: Path, *, user: bool = True) -> git.Repo:
    (root / "flags").mkdir(parents=True)
    (root / "tenants").mkdir()
    (root / "flags" / "ramp.yaml").write_text(RAMP, encoding="utf-8")
    (root / "flags" / "steady.yaml").write_text(STEADY, encoding="utf-8")
    (root / "tenants" / "production.yaml").write_text(TENANTS, encoding="utf-8")
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as config:
        if user:
            config.set_value("user", "name", "Ada Operator")
            config.set_value("user", "email", "ada@dezky.eu")
        config.set_value("commit", "gpgsign", "false")
    repo.index.add(["flags/ramp.yaml", "flags/steady.yaml", "tenants/production.yaml"])
    author = git.Actor("Setup", "setup@dezky.eu")
    repo.index.commit("Initial flags", author=author, committer=author)
    return repo


@pytest.fixture
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git configuration: the repository's own config is the current user."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_AUTHOR_NAME", raising=False)
    monkeypatch.delenv("GIT_AUTHOR_EMAIL", raising=False)
    monkeypatch.delenv("GIT_COMMITTER_NAME", raising=False)
    monkeypatch.delenv("GIT_COMMITTER_EMAIL", raising=False)


def test_kill_commit_commits_only_the_flag_as_the_configured_user(tmp_path, flagops, isolated_git):
    root = tmp_path / "repo"
    repo = make_repo(root)
    # Someone's unrelated work in progress: one staged change, one unstaged; neither is committed.
    (root / "flags" / "steady.yaml").write_text(STEADY.replace("Always on", "Always on (staged)"))
    repo.index.add(["flags/steady.yaml"])
    (root / "tenants" / "production.yaml").write_text(TENANTS + "- {id: t_x, slug: sx, plan: free}\n")

    run = flagops("kill", "ramp", "--reason", "error rate 12% on eu-1", "--commit", root=root)
    assert run.code == 0, run.err
    assert "production: " in run.out and "-> 0 of 41 tenants" in run.out
    head = repo.head.commit
    assert head.author.name == "Ada Operator" and head.author.email == "ada@dezky.eu"
    assert head.committer.email == "ada@dezky.eu"
    assert head.message.splitlines()[0] == "Kill ramp: error rate 12% on eu-1"
    assert list(head.stats.files) == ["flags/ramp.yaml"]
    committed = (head.tree / "flags" / "ramp.yaml").data_stream.read().decode()
    assert "state: off\npct: 0\n" in committed and "plans: [business]   # paying first" in committed
    assert "# watch the error rate" in committed
    # The other changes are still there, still staged or unstaged as they were.
    assert [d.a_path for d in repo.index.diff("HEAD")] == ["flags/steady.yaml"]
    assert [d.a_path for d in repo.index.diff(None)] == ["tenants/production.yaml"]
    assert f"committed {head.hexsha[:12]}" in run.err


def test_kill_commit_without_a_git_user_is_refused_clearly(tmp_path, flagops, isolated_git):
    root = tmp_path / "repo"
    repo = make_repo(root, user=False)
    before = repo.head.commit.hexsha
    run = flagops("kill", "ramp", "--reason", "r", "--commit", root=root)
    assert run.code == 1
    assert "git has no user configured" in run.err and "git config" in run.err
    assert repo.head.commit.hexsha == before


def test_kill_commit_of_an_already_off_flag_commits_nothing(tmp_path, flagops, isolated_git):
    root = tmp_path / "repo"
    repo = make_repo(root)
    assert flagops("kill", "ramp", "--commit", root=root).code == 0
    first = repo.head.commit.hexsha
    assert repo.head.commit.message.startswith("Kill ramp\n")
    run = flagops("kill", "ramp", "--commit", "--reason", "again", root=root)
    assert run.code == 0 and "already off" in run.err
    assert repo.head.commit.hexsha == first


def test_kill_outside_git_with_commit_is_refused(repo, flagops):
    repo.tenants("production", TENANTS)
    repo.flag("ramp", RAMP)
    run = flagops("kill", "ramp", "--commit", root=repo.root)
    assert run.code == 1 and "not in a git repository" in run.err


def test_publish_options_need_publish(repo, flagops):
    repo.flag("ramp", RAMP)
    run = flagops("kill", "ramp", "--env", "production", root=repo.root)
    assert run.code == 2 and "--publish" in run.err
    run = flagops("kill", "ramp", "--publish", "--env", "production", root=repo.root)
    assert run.code == 2 and "--reason" in run.err
    assert (repo.root / "flags" / "ramp.yaml").read_text() == RAMP


# --------------------------------------------------------------------------- break-glass


def _clone(url: str, path: Path) -> git.Repo:
    repo = git.Repo.clone_from(url, path)
    with repo.config_writer() as config:
        config.set_value("user", "name", "Ada Operator")
        config.set_value("user", "email", "ada@dezky.eu")
        config.set_value("commit", "gpgsign", "false")
    return repo


@pytest.fixture
def clones(tmp_path: Path, isolated_git):
    """A shared repository (bare, like the forge), the operator's clone and CI's clone of main."""
    seed = make_repo(tmp_path / "seed")
    upstream = tmp_path / "upstream.git"
    git.Repo.clone_from(str(seed.working_tree_dir), upstream, bare=True)
    ops = _clone(str(upstream), tmp_path / "ops")
    ci = _clone(str(upstream), tmp_path / "ci")
    return ops, ci


def _bundle_value(read, slug: str) -> bool:
    return json.loads(read(f"production/tenants/{slug}.json"))["flags"]["ramp"]


def _break_glass_sequence(ops: git.Repo, ci: git.Repo, flagops, target: str, read, reader, extra=()) -> float:
    """The whole emergency path; returns seconds from the kill command to the reader seeing false."""
    ops_root, ci_root = Path(ops.working_tree_dir), Path(ci.working_tree_dir)
    run = flagops("publish", "--env", "production", "--target", target, *extra, root=ci_root)
    assert run.code == 0, run.err
    lit = [f"s{i}" for i in range(40) if _bundle_value(read, f"s{i}")]
    assert lit, "the rollout is on for some tenants before the kill"
    assert reader(lit[0]) is True

    # Uncommitted work in the operator's tree must not be published with the kill.
    (ops_root / "flags" / "steady.yaml").write_text(STEADY.replace("state: on", "state: off"))

    started = time.monotonic()
    run = flagops("kill", "ramp", "--reason", "checkout errors on eu-1", "--publish", "--env", "production",
                  "--target", target, *extra, root=ops_root)
    while reader(lit[0]) is not False:
        assert time.monotonic() - started < 60, "the reader never saw the kill"
        time.sleep(0.05)
    latency = time.monotonic() - started
    assert run.code == 0, run.err
    kill_sha = ops.head.commit.hexsha
    assert ops.head.commit.message.startswith("Kill ramp: checkout errors on eu-1")
    assert f"revision {kill_sha}" in run.out and "git push origin main:main" in run.out
    assert "-> 0 of 40 tenants" in run.out
    assert not any(_bundle_value(read, slug) for slug in lit)
    steady = {json.loads(read(f"production/tenants/{s}.json"))["flags"]["steady"] for s in lit}
    assert steady == {True}, "uncommitted work was published"
    assert json.loads(read("production/manifest.json"))["revision"] == kill_sha

    # The scheduled publish of main (which lacks the kill) fails loudly instead of reverting it.
    run = flagops("publish", "--env", "production", "--target", target, *extra, root=ci_root)
    assert run.code == 1
    assert kill_sha in run.err and "Traceback" not in run.err
    assert json.loads(read("production/manifest.json"))["revision"] == kill_sha
    assert not any(_bundle_value(read, slug) for slug in lit)
    assert reader(lit[0]) is False

    # Once the kill commit is merged, the scheduled publish works again and keeps the flag off.
    ops.git.push("origin", "main:main")
    ci.git.pull("--ff-only")
    assert ci.head.commit.hexsha == kill_sha
    run = flagops("publish", "--env", "production", "--target", target, *extra, root=ci_root)
    assert run.code == 0, run.err
    assert not any(_bundle_value(read, slug) for slug in lit)
    return latency


def test_break_glass_end_to_end_on_a_file_target(clones, flagops, tmp_path):
    from flagops_client import FlagClient

    ops, ci = clones
    store = tmp_path / "store"
    client = FlagClient(f"file://{store}", "production", refresh_interval=None)

    def reader(slug: str) -> bool:
        client.refresh()
        return client.is_enabled("ramp", tenant=slug, default=None)

    try:
        latency = _break_glass_sequence(ops, ci, flagops, f"file://{store}",
                                        lambda key: (store / key).read_bytes(), reader)
    finally:
        client.close()
    print(f"\nbreak-glass latency (file://, client refresh): {latency:.2f}s")


def test_break_glass_end_to_end_on_the_s3_server(clones, flagops, s3_server, s3_bucket, s3_env):
    from flagops.publish import bucket_policy
    from flagops_client import FlagClient

    ops, ci = clones
    client_s3 = s3_bucket.client
    client_s3.put_bucket_policy(Bucket=s3_bucket, Policy=json.dumps(bucket_policy(s3_bucket, "flags")))
    base = f"{s3_server.endpoint_url}/{s3_bucket}/flags"
    client = FlagClient(base, "production", refresh_interval=None, timeout=5.0)

    def read(key: str) -> bytes:
        return client_s3.get_object(Bucket=s3_bucket, Key=f"flags/{key}")["Body"].read()

    def reader(slug: str) -> bool:
        client.refresh()
        return client.is_enabled("ramp", tenant=slug, default=None)

    try:
        latency = _break_glass_sequence(ops, ci, flagops, f"s3://{s3_bucket}/flags", read, reader,
                                        extra=("--endpoint-url", s3_server.endpoint_url))
    finally:
        client.close()
    # The reader above is anonymous: bundles are public, the manifest is not.
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{base}/production/manifest.json", timeout=5)
    print(f"\nbreak-glass latency (S3 server, client refresh): {latency:.2f}s")


def test_break_glass_refuses_before_changing_anything_when_the_branch_is_behind(clones, flagops, tmp_path):
    ops, ci = clones
    target = f"file://{tmp_path / 'store'}"
    ci_root = Path(ci.working_tree_dir)
    # Main moved on and was published; the operator has not pulled.
    (ci_root / "flags" / "steady.yaml").write_text(STEADY.replace("Always on", "Always on, everywhere"))
    ci.index.add(["flags/steady.yaml"])
    ci.index.commit("Reword steady")
    ci.git.push("origin", "main:main")
    assert flagops("publish", "--env", "production", "--target", target, root=ci_root).code == 0
    before = ops.head.commit.hexsha
    ops_root = Path(ops.working_tree_dir)
    run = flagops("kill", "ramp", "--reason", "r", "--publish", "--env", "production", "--target", target,
                  root=ops_root)
    assert run.code == 1
    assert "nothing was changed" in run.err and "git pull" in run.err
    assert ops.head.commit.hexsha == before
    assert (ops_root / "flags" / "ramp.yaml").read_text() == RAMP


def test_break_glass_refuses_uncommitted_edits_of_the_flag(clones, flagops, tmp_path):
    ops, _ = clones
    ops_root = Path(ops.working_tree_dir)
    edited = RAMP.replace("Gradual rollout", "Gradual rollout (draft)")
    (ops_root / "flags" / "ramp.yaml").write_text(edited)
    before = ops.head.commit.hexsha
    run = flagops("kill", "ramp", "--reason", "r", "--publish", "--env", "production",
                  "--target", f"file://{tmp_path / 'store'}", root=ops_root)
    assert run.code == 1 and "uncommitted changes" in run.err
    assert ops.head.commit.hexsha == before
    assert (ops_root / "flags" / "ramp.yaml").read_text() == edited


def test_break_glass_that_fails_to_publish_says_so_and_a_rerun_publishes(clones, flagops, tmp_path):
    import socket

    ops, _ = clones
    ops_root = Path(ops.working_tree_dir)
    store = tmp_path / "store"
    target = f"file://{store}"
    # Another live publish (pid 1 always exists) holds the environment's lock: this run commits
    # the kill but cannot publish.
    (store / "production").mkdir(parents=True)
    lock = store / "production" / ".publish-lock.json"
    lock.write_text(json.dumps({"owner": "someone", "host": socket.gethostname(), "pid": 1,
                                "started": time.time(), "expires": time.time() + 600}))
    run = flagops("kill", "ramp", "--reason", "errors", "--publish", "--env", "production", "--target", target,
                  root=ops_root)
    assert run.code == 1
    kill_sha = ops.head.commit.hexsha
    assert ops.head.commit.message.startswith("Kill ramp: errors")
    assert f"committed locally ({kill_sha[:12]}) but NOT published" in run.err
    assert not (store / "production" / "manifest.json").exists()

    lock.unlink()
    run = flagops("kill", "ramp", "--reason", "errors", "--publish", "--env", "production", "--target", target,
                  root=ops_root)
    assert run.code == 0, run.err
    assert ops.head.commit.hexsha == kill_sha  # nothing new to commit
    assert json.loads((store / "production" / "manifest.json").read_text())["revision"] == kill_sha
    assert f"published production revision {kill_sha}" in run.out


def test_break_glass_refuses_a_branch_with_unreviewed_commits(clones, flagops, tmp_path):
    ops, _ = clones
    ops_root = Path(ops.working_tree_dir)
    ops.git.switch("-c", "wip")
    (ops_root / "flags" / "steady.yaml").write_text(STEADY.replace("state: on", "state: off"))
    ops.index.add(["flags/steady.yaml"])
    ops.index.commit("Turn steady off (not reviewed)")
    before = ops.head.commit.hexsha
    target = f"file://{tmp_path / 'store'}"
    run = flagops("kill", "ramp", "--reason", "r", "--publish", "--env", "production", "--target", target,
                  root=ops_root)
    assert run.code == 1 and "no upstream" in run.err
    ops.git.branch("--set-upstream-to", "origin/main")
    run = flagops("kill", "ramp", "--reason", "r", "--publish", "--env", "production", "--target", target,
                  root=ops_root)
    assert run.code == 1
    assert "1 commit(s) that are not on its upstream" in run.err and "Turn steady off" in run.err
    assert ops.head.commit.hexsha == before
    assert (ops_root / "flags" / "ramp.yaml").read_text() == RAMP
    assert not (tmp_path / "store" / "production" / "manifest.json").exists()


def test_break_glass_covers_every_environment_with_an_inventory_through_the_fast_path(tmp_path, flagops,
                                                                                      isolated_git):
    seed = make_repo(tmp_path / "seed")
    (tmp_path / "seed" / "tenants" / "staging.yaml").write_text(TENANTS, encoding="utf-8")
    seed.index.add(["tenants/staging.yaml"])
    seed.index.commit("Staging tenants")
    upstream = tmp_path / "upstream.git"
    git.Repo.clone_from(str(seed.working_tree_dir), upstream, bare=True)
    ops = _clone(str(upstream), tmp_path / "ops")
    ops_root = Path(ops.working_tree_dir)
    store = tmp_path / "store"
    target = f"file://{store}"
    for env in ("production", "staging"):
        assert flagops("publish", "--env", env, "--target", target, root=ops_root).code == 0
    before = {env: json.loads((store / env / "head.json").read_text()) for env in ("production", "staging")}
    assert all("ramp" not in head["off"] for head in before.values())

    run = flagops("kill", "ramp", "--reason", "errors everywhere", "--publish", "--target", target, root=ops_root)
    assert run.code == 0, run.err
    kill_sha = ops.head.commit.hexsha
    for env in ("production", "staging"):
        head = json.loads((store / env / "head.json").read_text())
        assert head["revision"] == kill_sha and "ramp" in head["off"]
        assert head["sequence"] == before[env]["sequence"] + 2  # the interim kill head, then the final one
        assert f"published {env} revision {kill_sha}" in run.out
    assert run.out.count("the head named ramp off before any bundle") == 2

    # Repeated --env names the environments; an unknown one is refused before anything changes.
    run = flagops("kill", "steady", "--reason", "r", "--publish", "--env", "prodution", "--target", target,
                  root=ops_root)
    assert run.code == 2 and "production" in run.err
    assert ops.head.commit.hexsha == kill_sha
