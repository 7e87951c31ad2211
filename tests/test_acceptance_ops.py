"""Black-box checks of publish, the service client and the operator commands, as an operator uses them.

The CLI runs in-process through its real error boundary (testkit.invoke; the S3 publish also as
the installed console script, a subprocess), the client as a library; the object stores
are the real local S3 server and the ``file://`` target, served over a plain ``http.server``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from flagops_client import FlagClient
from testkit import Completed, invoke, run_git, spawn

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_KEYS = ["environment", "revision", "previousRevision", "uploaded", "unchanged", "deleted", "bytes",
                "seconds"]
MODELINE = "# yaml-language-server: $schema=../schema/flag.schema.json\n"
GIT_ENV = {"GIT_AUTHOR_NAME": "Ops", "GIT_AUTHOR_EMAIL": "ops@example.eu", "GIT_COMMITTER_NAME": "Ops",
           "GIT_COMMITTER_EMAIL": "ops@example.eu"}


def run(*args: str, cwd: Path, env: Optional[dict[str, str]] = None) -> Completed:
    """``flagops ARGS`` in this process (testkit.invoke), without the caller's AWS_* settings."""
    clean: dict[str, Optional[str]] = {k: None for k in os.environ if k.startswith("AWS_")}
    return invoke(*args, cwd=cwd, env={**clean, **(env or {})})


def run_process(*args: str, cwd: Path, env: Optional[dict[str, str]] = None) -> Completed:
    """The installed console script as a subprocess (a smoke test of the real process)."""
    clean: dict[str, Optional[str]] = {k: None for k in os.environ if k.startswith("AWS_")}
    return spawn(*args, cwd=cwd, env={**clean, **(env or {})})


def git(cwd: Path, *args: str) -> str:
    return run_git(cwd, *args, author=("Ops", "ops@example.eu")).strip()


def flag(root: Path, key: str, body: str) -> None:
    (root / "flags" / f"{key}.yaml").write_text(f"{MODELINE}key: {key}\n{body}", encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small repository of its own: two environments, three flags, one commit tagged v1."""
    root = tmp_path / "repo"
    (root / "flags").mkdir(parents=True)
    (root / "tenants").mkdir()
    (root / "schema").symlink_to(ROOT / "schema")
    (root / "tenants" / "production.yaml").write_text(
        "- id: p-1\n  slug: north\n  plan: free\n- id: p-2\n  slug: south\n  plan: business\n"
        "  partnerSlug: reseller\n- id: p-3\n  slug: east\n  plan: enterprise\n- id: p-4\n  slug: west\n"
        "  plan: starter\n", encoding="utf-8")
    (root / "tenants" / "staging.yaml").write_text("- id: s-1\n  slug: north\n  plan: free\n", encoding="utf-8")
    flag(root, "calendar_sync", "description: Calendar sync   # keep me\nowner: cal@example.eu\n"
                                "state: targeted\nscope:\n  plans: [business]\n")
    flag(root, "legacy_inbox", "description: Always on\nstate: on\n")
    flag(root, "quiet_mode", "description: Nobody\nowner: q@example.eu\nstate: off\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial flags")
    git(root, "tag", "v1")
    return root


def summary(proc: Completed) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == SUMMARY_KEYS
    return data


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


# ------------------------------------------------------------------------------------------ publish


def test_s3_publish_with_endpoint_from_environment_from_elsewhere_and_dry_run(project: Path, tmp_path: Path,
                                                                           s3_server: Any, s3_bucket: Any) -> None:
    env = s3_server.env()  # AWS_ENDPOINT_URL and the standard credential chain, no --endpoint-url
    target = f"s3://{s3_bucket}/flags"
    elsewhere = tmp_path / "elsewhere"
    assert run("compile", "--out", str(elsewhere), cwd=project).returncode == 0
    first = summary(run_process("publish", "--env", "production", "--target", target, "--from", str(elsewhere),
                                "--format", "json", cwd=project, env=env))
    assert (first["uploaded"], first["unchanged"], first["deleted"], first["previousRevision"]) == (4, 0, 0, None)
    client = s3_bucket.client
    for rel, data in tree(elsewhere / "production").items():
        obj = client.get_object(Bucket=s3_bucket, Key=f"flags/production/{rel}")
        assert obj["Body"].read() == data
        assert obj["ContentType"] == "application/json" and obj["CacheControl"] == "max-age=60"
    assert client.get_object(Bucket=s3_bucket, Key="flags/production/catalog.json")["Body"].read() == \
        (elsewhere / "catalog.json").read_bytes()  # the catalog is per environment

    def remote() -> dict[str, str]:
        return {o["Key"]: o["ETag"] for o in client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])}

    before = remote()
    # One tenant flips (east joins calendar_sync) and west leaves: the dry run says so, changes nothing.
    flag(project, "calendar_sync", "description: Calendar sync\nstate: targeted\nscope:\n"
                                   "  plans: [business, enterprise]\n")
    inventory = project / "tenants" / "production.yaml"
    inventory.write_text(inventory.read_text().split("- id: p-4")[0], encoding="utf-8")
    git(project, "commit", "-qam", "calendar for enterprise, west leaves")
    dry = summary(run("publish", "--env", "production", "--target", target, "--dry-run", "--format", "json",
                      cwd=project, env=env))
    assert (dry["uploaded"], dry["unchanged"], dry["deleted"]) == (1, 2, 1)
    assert remote() == before
    real = summary(run("publish", "--env", "production", "--target", target, "--format", "json", cwd=project,
                       env=env))
    assert (real["uploaded"], real["unchanged"], real["deleted"]) == (1, 2, 1)
    assert real["previousRevision"] == first["revision"] != real["revision"]
    assert "flags/production/tenants/west.json" not in remote()


def test_file_target_rollback_to_a_tag_and_a_sha(project: Path, tmp_path: Path) -> None:
    target = (tmp_path / "store").as_uri()
    v1 = git(project, "rev-parse", "HEAD")
    assert run("publish", "--env", "production", "--target", target, cwd=project).returncode == 0
    flag(project, "quiet_mode", "description: Nobody\nowner: q@example.eu\nstate: on\n")
    git(project, "commit", "-qam", "quiet mode on")
    head = git(project, "rev-parse", "HEAD")
    assert summary(run("publish", "--env", "production", "--target", target, "--format", "json",
                       cwd=project))["uploaded"] == 4
    older = run("publish", "--env", "production", "--target", target, "--from", str(tmp_path / "old"),
                cwd=project)
    assert older.returncode == 2  # nothing compiled there
    git(project, "switch", "-q", "--detach", "v1")
    refused = run("publish", "--env", "production", "--target", target, cwd=project)
    assert refused.returncode == 1 and "roll" in refused.stderr and "Traceback" not in refused.stderr
    git(project, "switch", "-q", "main")
    back = summary(run("rollback", "--env", "production", "--target", target, "--to", "v1", "--format", "json",
                       cwd=project))
    assert (back["revision"], back["previousRevision"], back["uploaded"]) == (v1, head, 4)
    bundle = json.loads((tmp_path / "store" / "production" / "tenants" / "north.json").read_bytes())
    assert bundle["flags"]["quiet_mode"] is False
    forward = summary(run("rollback", "--env", "production", "--target", target, "--to", head, "--format", "json",
                          cwd=project))
    assert forward["revision"] == head and git(project, "worktree", "list").count("\n") == 0


def test_publish_from_something_that_is_not_a_directory_is_a_usage_error(project: Path, tmp_path: Path) -> None:
    proc = run("publish", "--env", "production", "--target", (tmp_path / "s").as_uri(), "--from", "/dev/null",
               cwd=project)
    assert proc.returncode == 2
    assert "no compiled output" in proc.stderr and "unexpected" not in proc.stderr


def test_bucket_policy_is_json_opening_only_bundles(project: Path) -> None:
    proc = run("bucket-policy", "--bucket", "flag-bundles", "--prefix", "flags", cwd=project)
    assert proc.returncode == 0
    policy = json.loads(proc.stdout)
    [statement] = policy["Statement"]
    assert statement["Action"] == "s3:GetObject" and statement["Principal"] == "*"
    assert statement["Resource"] == ["arn:aws:s3:::flag-bundles/flags/*/tenants/*",
                                     "arn:aws:s3:::flag-bundles/flags/*/head.json"]


def test_dashboard_publish_mirrors_the_site(project: Path, tmp_path: Path) -> None:
    site, store = tmp_path / "site", tmp_path / "store"
    assert run("dashboard", "--out", str(site), cwd=project).returncode == 0
    assert run("publish", "--env", "production", "--target", store.as_uri(), "--dashboard", str(site),
               cwd=project).returncode == 0
    assert (store / "dashboard" / "flags" / "quiet_mode.html").is_file()
    (project / "flags" / "quiet_mode.yaml").unlink()
    git(project, "commit", "-qam", "remove quiet_mode")
    assert run("dashboard", "--out", str(site), cwd=project).returncode == 0
    assert run("publish", "--env", "production", "--target", store.as_uri(), "--dashboard", str(site),
               cwd=project).returncode == 0
    # A deleted flag keeps its page (its history), marked deleted, in the mirror as in the site.
    mirrored = (store / "dashboard" / "flags" / "quiet_mode.html").read_bytes()
    assert b'class="badge deleted"' in mirrored and mirrored == (site / "flags" / "quiet_mode.html").read_bytes()
    assert (store / "dashboard" / "index.html").read_bytes() == (site / "index.html").read_bytes()


# ------------------------------------------------------------------------------------------ client


@pytest.fixture
def plain_http(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The standard library's file server (Last-Modified, If-Modified-Since, no ETag) over a directory."""
    directory = tmp_path / "served"
    directory.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", directory
    finally:
        server.shutdown()
        server.server_close()


def test_client_over_plain_http_sees_a_republish_made_within_the_same_second(project: Path,
                                                                          plain_http: tuple[str, Path]) -> None:
    base, served = plain_http
    assert run("publish", "--env", "production", "--target", served.as_uri(), cwd=project).returncode == 0
    with FlagClient(base, environment="production", refresh_interval=None, timeout=2.0) as client:
        assert client.is_enabled("calendar_sync", tenant="south") is True
        assert client.status().last_success is not None  # the first load reached the store
        copy = client.flags("south")
        copy["calendar_sync"] = False
        assert client.flags("south")["calendar_sync"] is True
        # Republished at once: file servers compare whole seconds, so this must not answer 304 forever.
        flag(project, "calendar_sync", "description: Calendar sync\nstate: off\n")
        git(project, "commit", "-qam", "calendar off")
        assert run("publish", "--env", "production", "--target", served.as_uri(), cwd=project).returncode == 0
        assert client.refresh() is True
        assert client.is_enabled("calendar_sync", tenant="south", default=True) is False
        # Once the document is older than a second, Last-Modified validates: an unchanged bundle is a 304.
        time.sleep(1.1)
        client.refresh()
        not_modified = client.status().not_modified
        client.refresh()
        assert client.status().not_modified == not_modified + 1


def test_client_close_stops_its_thread_and_reads_still_answer(project: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert run("publish", "--env", "production", "--target", store.as_uri(), cwd=project).returncode == 0
    client = FlagClient(store.as_uri(), environment="production", refresh_interval=0.05)
    assert client.flags("north") == {"calendar_sync": False, "legacy_inbox": True, "quiet_mode": False}
    thread = client._thread
    assert thread is not None and thread.is_alive()
    client.close()
    assert not thread.is_alive() and client.status().refreshing is False
    assert client.is_enabled("legacy_inbox", tenant="north") is True
    assert client.is_enabled("legacy_inbox", tenant="south", default=False) is False  # no I/O after close


# ------------------------------------------------------------------------------------------ editing


def test_kill_commit_without_a_git_user_changes_nothing(project: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}
    before = (project / "flags" / "calendar_sync.yaml").read_bytes()
    proc = run("kill", "calendar_sync", "--reason", "outage", "--commit", cwd=project, env=env)
    assert proc.returncode == 1 and "no user configured" in proc.stderr
    assert (project / "flags" / "calendar_sync.yaml").read_bytes() == before
    assert git(project, "status", "--porcelain") == ""


def test_kill_commit_and_unknown_key(project: Path) -> None:
    typo = run("kill", "calendar_synk", cwd=project)
    assert typo.returncode == 1 and 'did you mean "calendar_sync"' in typo.stderr
    proc = run("kill", "calendar_sync", "--reason", "sync storm", "--commit", cwd=project, env=GIT_ENV)
    assert proc.returncode == 0, proc.stderr
    assert git(project, "log", "-1", "--format=%an|%s") == "Ops|Kill calendar_sync: sync storm"
    text = (project / "flags" / "calendar_sync.yaml").read_text()
    assert "state: off" in text and "# keep me" in text and "plans: [business]" in text


def test_new_and_set_error_paths(project: Path) -> None:
    assert run("new", "calendar_sync", "--description", "again", cwd=project).returncode == 1
    assert run("new", "Bad-Key", "--description", "x", cwd=project).returncode == 1
    made = run("new", "fresh_start", "--description", "Fresh", "--owner", "o@example.eu", "--expires",
               "2030-01-31", cwd=project)
    assert made.returncode == 0
    assert (project / "flags" / "fresh_start.yaml").read_text().startswith(MODELINE)
    assert run("validate", cwd=project).returncode == 0
    before = (project / "flags" / "calendar_sync.yaml").read_bytes()
    invalid = run("set", "calendar_sync", "--add-tenant", "sout", cwd=project)
    assert invalid.returncode == 1 and "unknown-tenant" in invalid.stdout + invalid.stderr
    assert run("set", "calendar_sync", "--remove-plan", "free", cwd=project).returncode == 1
    assert run("set", "calendar_sync", "--state", "rollout", cwd=project).returncode == 1  # pct missing
    assert (project / "flags" / "calendar_sync.yaml").read_bytes() == before
    ok = run("set", "calendar_sync", "--add-plan", "enterprise", cwd=project)
    assert ok.returncode == 0 and "production: 1 of 4 tenants -> 2 of 4 tenants" in ok.stdout
    assert "# keep me" in (project / "flags" / "calendar_sync.yaml").read_text()


# ------------------------------------------------------------------------------------------ stale, refs


def test_stale_and_refs_json_shapes(project: Path, tmp_path: Path) -> None:
    flag(project, "gone_by", "description: Expired\nowner: g@example.eu\nexpires: 2021-02-03\nstate: on\n")
    stale = run("stale", "--format", "json", cwd=project)
    assert stale.returncode == 0
    entries = json.loads(stale.stdout)
    assert [list(e) for e in entries] == [["key", "reason", "since", "owner", "action"]] * len(entries)
    assert {e["key"]: e["since"] for e in entries} == {"gone_by": "2021-02-03"}  # the others are too young
    assert run("stale", "--strict", cwd=project).returncode == 1
    src = tmp_path / "src"
    (src / "node_modules" / "lib").mkdir(parents=True)
    (src / "app.ts").write_text("if (isEnabled('calendar_sync')) {}\nuseFlag('calendar_synx')\n")
    (src / "node_modules" / "lib" / "x.js").write_text("isEnabled('legacy_inbox')\n")
    refs = run("refs", str(src), "--format", "json", cwd=project)
    assert refs.returncode == 0
    report = json.loads(refs.stdout)
    assert list(report) == ["references", "unreferenced", "unknown"]
    assert report["references"] == {"calendar_sync": [{"path": str(src / "app.ts"), "line": 1}]}
    assert report["unreferenced"] == ["gone_by", "legacy_inbox", "quiet_mode"]
    assert report["unknown"] == [{"key": "calendar_synx", "path": str(src / "app.ts"), "line": 2,
                                  "suggestion": "calendar_sync"}]


def test_a_hand_edited_dist_is_refused_and_the_hint_repairs_it(project: Path, tmp_path: Path) -> None:
    dist, target = tmp_path / "dist", (tmp_path / "store").as_uri()
    assert run("compile", "--env", "production", "--out", str(dist), cwd=project).returncode == 0
    bundle = dist / "production" / "tenants" / "south.json"
    bundle.write_bytes(bundle.read_bytes().replace(b'"legacy_inbox":true', b'"legacy_inbox":false'))
    refused = run("publish", "--env", "production", "--target", target, "--from", str(dist), cwd=project)
    assert refused.returncode == 1 and "does not match the manifest digest (south)" in refused.stderr
    assert not [p for p in (tmp_path / "store").rglob("production/**/*") if p.is_file()]  # nothing uploaded
    assert "rm -rf" in refused.stderr  # an incremental compile may keep bundles whose flags did not change
    subprocess.run(["rm", "-rf", str(dist)], check=True)
    assert run("compile", "--env", "production", "--out", str(dist), cwd=project).returncode == 0
    assert run("publish", "--env", "production", "--target", target, "--from", str(dist),
               cwd=project).returncode == 0


def test_break_glass_without_a_git_user_changes_nothing(project: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}
    store = tmp_path / "store"
    proc = run("kill", "calendar_sync", "--reason", "outage", "--publish", "--env", "production", "--target",
               store.as_uri(), cwd=project, env=env)
    assert proc.returncode == 1 and "no user configured" in proc.stderr
    assert git(project, "status", "--porcelain") == "" and not store.exists()


def test_publish_from_a_dist_compiled_at_a_commit_this_checkout_lacks(project: Path, tmp_path: Path) -> None:
    target = (tmp_path / "store").as_uri()
    assert run("publish", "--env", "production", "--target", target, cwd=project).returncode == 0
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(project), str(other)], check=True)
    (other / "schema").unlink(missing_ok=True)
    (other / "schema").symlink_to(ROOT / "schema")
    git(other, "commit", "-q", "--allow-empty", "-m", "only over there")
    dist = tmp_path / "dist"
    assert run("compile", "--env", "production", "--out", str(dist), cwd=other).returncode == 0
    here = run("publish", "--env", "production", "--target", target, "--from", str(dist), cwd=project)
    assert here.returncode == 1 and "not in the local history" in here.stderr
    assert "unexpected" not in here.stderr
    there = run("--root", str(other), "publish", "--env", "production", "--target", target, "--from", str(dist),
                cwd=project)
    assert there.returncode == 0, there.stderr


def test_set_on_a_file_that_is_not_utf8_is_refused_cleanly(project: Path) -> None:
    path = project / "flags" / "calendar_sync.yaml"
    path.write_bytes(path.read_bytes().replace(b"Calendar sync", b"Calendar \xff sync"))
    before = path.read_bytes()
    proc = run("set", "calendar_sync", "--add-plan", "free", cwd=project)
    assert proc.returncode == 1 and "does not parse" in proc.stderr and "unexpected" not in proc.stderr
    assert path.read_bytes() == before
