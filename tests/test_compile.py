"""flagops compile: bundles equal the semantics, deterministic bytes, schemas, atomic output,
--tenants from a file and from a real local HTTP server, and the git revision."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import random
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import git
import jsonschema
import pytest

from flagops import bundles, fsutil
from flagops.compile import compile_project
from flagops.layout import dumps, snapshot_document
from flagops.errors import InvalidInputError, UsageError
from flagops.schemas import Schemas
from flagops_client.evaluation import evaluate, evaluate_all

ROOT = Path(__file__).resolve().parent.parent
PLANS = ["free", "starter", "business", "enterprise"]
ENVS = ["development", "staging", "production"]
PARTNERS = ["nordcloud-it", "alpine-msp", "benelux-hosting"]


def canonical(doc: Any) -> bytes:
    return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")


def snapshot(directory: Path, *, hidden: bool = False) -> dict[str, bytes]:
    """Every file's bytes; the hidden state files (which record times) only when asked."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and (hidden or not p.relative_to(directory).parts[0].startswith("."))}


# --------------------------------------------------------------------------- random configurations


def random_inventory(rng: random.Random, n: int) -> list[dict[str, Any]]:
    tenants = []
    for i in range(n):
        t: dict[str, Any] = {"id": rng.choice([f"t_{rng.getrandbits(64):016x}", f"Mandant-ü-{i}", f"{i}"]),
                             "slug": f"{rng.choice(['acme', 'nord', 'x', '9'])}-{i}", "plan": rng.choice(PLANS)}
        if rng.random() < 0.4:
            t["partnerSlug"] = rng.choice(PARTNERS)
        if rng.random() < 0.3:
            t["name"] = f"Tenant {i} GmbH"
        tenants.append(t)
    return tenants


def random_flags(rng: random.Random, slugs: list[str], partners: list[str], n: int) -> dict[str, dict[str, Any]]:
    flags = {}
    for i in range(n):
        key = f"flag_{i:02d}_{rng.getrandbits(16):x}"
        state = rng.choice(["off", "on", "targeted", "rollout", "targeted", "rollout"])
        flag: dict[str, Any] = {"key": key, "description": f"random flag {i}", "state": state}
        if state == "rollout":
            flag["pct"] = rng.choice([0, 1, 33, 50, 99, 100])
        if state in ("targeted", "rollout") and rng.random() < 0.85:
            pools = {"plans": PLANS, "tenantSlugs": slugs, "partnerSlugs": partners, "environments": ENVS}
            flag["scope"] = {axis: rng.sample(pool, rng.randint(0, min(3, len(pool))))
                             for axis, pool in pools.items() if pool and rng.random() < 0.5}
        flags[key] = flag
    return flags


def write_config(root: Path, flags: dict[str, dict[str, Any]], inventories: dict[str, list[dict[str, Any]]]) -> None:
    (root / "flags").mkdir(parents=True, exist_ok=True)
    (root / "tenants").mkdir(exist_ok=True)
    for key, flag in flags.items():
        (root / "flags" / f"{key}.yaml").write_text(json.dumps(flag, indent=1) + "\n")  # JSON is YAML
    for env, tenants in inventories.items():
        (root / "tenants" / f"{env}.json").write_text(json.dumps(tenants, ensure_ascii=False))


def random_config(root: Path, seed: int) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    rng = random.Random(seed)
    inventories = {env: random_inventory(rng, rng.randint(0, 40)) for env in ENVS}
    slugs = sorted({t["slug"] for ts in inventories.values() for t in ts})
    partners = sorted({t["partnerSlug"] for ts in inventories.values() for t in ts if "partnerSlug" in t})
    flags = random_flags(rng, slugs, partners, rng.randint(1, 12))
    write_config(root, flags, inventories)
    return flags, inventories


@pytest.fixture(scope="module")
def validators() -> dict[str, Any]:
    schemas = Schemas.load(ROOT / "schema")
    out = {name: schemas.validator(name) for name in ("bundle", "manifest", "rules")}
    # Loaded alone, as a reader in another language loads it: it must be self-contained.
    out["snapshot"] = jsonschema.Draft202012Validator(json.loads((ROOT / "schema" / "snapshot.schema.json").read_text()))
    return out


def check_snapshot(base: Path, env: str, flags: dict[str, Any], tenants: list[dict[str, Any]],
                   validator: Any) -> None:
    """snapshot.json: valid, canonical, and every bit decodes to the tenant's value (LSB-first)."""
    raw = (base / "snapshot.json").read_bytes()
    doc = json.loads(raw)
    validator.validate(doc)
    assert raw == canonical(doc)
    assert doc["flags"] == sorted(flags) and doc["environment"] == env
    assert sorted(doc["tenants"]) == sorted(t["slug"] for t in tenants)
    width = (len(flags) + 7) // 8
    for tenant in tenants:
        bits = base64.b64decode(doc["tenants"][tenant["slug"]], validate=True)
        assert len(bits) == width
        values = {key: bool(bits[i >> 3] & (1 << (i & 7))) for i, key in enumerate(doc["flags"])}
        assert values == evaluate_all(flags, tenant, env)
    rows = {t["slug"]: [values for values in evaluate_all(flags, t, env).values()] for t in tenants}
    assert raw == dumps(snapshot_document(env, doc["revision"], doc["flags"], rows))


@pytest.mark.parametrize("seed", range(6))
def test_random_configs_compile_to_the_semantics(seed: int, tmp_path: Path, validators: dict[str, Any]) -> None:
    root = tmp_path / "repo"
    flags, inventories = random_config(root, seed)
    out = tmp_path / "out"
    result = compile_project(root, out=out)
    assert [e.environment for e in result.environments] == sorted(ENVS)
    for env, tenants in inventories.items():
        base = out / env
        manifest = json.loads((base / "manifest.json").read_bytes())
        assert manifest["flags"] == sorted(flags)
        assert manifest["revision"] is None
        assert sorted(manifest["tenants"]) == sorted(t["slug"] for t in tenants)
        assert sorted(p.name for p in (base / "tenants").iterdir()) == sorted(f"{t['slug']}.json" for t in tenants)
        for tenant in tenants:
            data = (base / "tenants" / f"{tenant['slug']}.json").read_bytes()
            expected = {"schemaVersion": 1, "environment": env, "tenant": tenant["slug"],
                        "flags": evaluate_all(flags, tenant, env)}
            assert data == canonical(expected)
            assert manifest["tenants"][tenant["slug"]] == "sha256:" + hashlib.sha256(data).hexdigest()
            validators["bundle"].validate(json.loads(data))
        validators["manifest"].validate(manifest)
        rules = json.loads((base / "rules.json").read_bytes())
        validators["rules"].validate(rules)
        assert (base / "rules.json").read_bytes() == canonical(rules)
        assert (base / "manifest.json").read_bytes() == canonical(manifest)
        # rules.json is enough to evaluate a tenant that has no bundle yet
        newcomer_rng = random.Random(seed * 31)
        for newcomer in random_inventory(newcomer_rng, 15):
            from_rules = {key: evaluate({**flag, "key": key}, newcomer, env) for key, flag in rules["flags"].items()}
            assert from_rules == evaluate_all(flags, newcomer, env)
        check_snapshot(base, env, flags, tenants, validators["snapshot"])
        enabled = {key: sum(evaluate(flag, t, env) for t in tenants) for key, flag in flags.items()}
        assert next(e for e in result.environments if e.environment == env).enabled == enabled


def test_two_compiles_are_byte_identical(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    random_config(root, 99)
    compile_project(root, out=tmp_path / "a")
    compile_project(root, out=tmp_path / "b")
    compile_project(root, out=tmp_path / "a")  # over its own previous output
    a, b = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    assert a == b and len(a) > 3


def test_output_directories_are_world_readable(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    random_config(root, 3)
    compile_project(root, out=tmp_path / "out")
    for env_dir in (tmp_path / "out").iterdir():
        if env_dir.is_dir():
            assert env_dir.stat().st_mode & 0o755 == 0o755, env_dir


def test_a_hand_edited_bundle_is_repaired_by_the_next_compile(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    random_config(root, 7)
    compile_project(root, out=tmp_path / "fresh")
    compile_project(root, out=tmp_path / "out")
    bundle = next((tmp_path / "out").glob("*/tenants/*.json"))
    time.sleep(0.01)  # the edit comes after the compile, as it would by hand
    bundle.write_bytes(bundle.read_bytes().replace(b"true", b"TRUE").replace(b"false", b"FALSE"))
    compile_project(root, out=tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(tmp_path / "fresh")


def test_rules_have_every_axis(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_config(root, {"only_env": {"key": "only_env", "description": "d", "state": "targeted",
                                     "scope": {"environments": ["staging"]}}},
                 {"staging": [{"id": "1", "slug": "a", "plan": "free"}]})
    compile_project(root, out=tmp_path / "out")
    rules = json.loads((tmp_path / "out" / "staging" / "rules.json").read_text())
    assert rules == {"schemaVersion": 1, "environment": "staging", "flags": {"only_env": {
        "state": "targeted", "pct": 0,
        "scope": {"plans": [], "tenantSlugs": [], "partnerSlugs": [], "environments": ["staging"]}}}}
    bundle = (tmp_path / "out" / "staging" / "tenants" / "a.json").read_bytes()
    assert bundle == b'{"environment":"staging","flags":{"only_env":true},"schemaVersion":1,"tenant":"a"}\n'


def test_failed_compile_leaves_previous_output_untouched(tmp_path: Path, flagops) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    random_config(root, 5)
    out = tmp_path / "out"
    assert flagops("compile", "--out", str(out), root=root).code == 0
    (out / "staging" / "extra-marker").write_text("kept")
    before = snapshot(out)
    broken = next((root / "flags").iterdir())
    broken.write_text(broken.read_text().replace('"state"', '"stat"'))
    run = flagops("compile", "--out", str(out), root=root)
    assert run.code == 1
    assert "nothing was compiled" in run.err and "Traceback" not in run.err
    assert f"flags/{broken.name}:" in run.err
    assert snapshot(out) == before
    # no build directories left behind
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(ENVS)


def test_compile_only_the_chosen_environments(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    random_config(root, 3)
    result = compile_project(root, environments=["staging", "staging"], out=tmp_path / "out")
    assert [e.environment for e in result.environments] == ["staging"]
    assert [p.name for p in (tmp_path / "out").iterdir() if p.is_dir()] == ["staging"]


def test_compile_usage_errors(tmp_path: Path, flagops) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    # Two inventories: --tenants cannot guess which one it replaces.
    write_config(root, {}, {"staging": [], "development": []})
    with pytest.raises(UsageError, match="unknown environment"):
        compile_project(root, environments=["qa"], out=tmp_path / "out")
    for args, needle in [(["--env", "production"], 'no tenant inventory for "production"'),
                         (["--env", "prod"], 'unknown environment "prod"'),
                         (["--tenants", "x.json"], "exactly one --env"),
                         (["--tenants", "x.json", "--env", "staging", "--env", "production"], "exactly one --env")]:
        run = flagops("compile", "--out", str(tmp_path / "out"), *args, root=root)
        assert run.code == 2, args
        assert needle in run.err and "Traceback" not in run.err


def test_invalid_input_raises_with_problems(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_config(root, {"bad": {"key": "bad", "description": "d", "state": "rollout", "pct": 101}}, {"staging": []})
    with pytest.raises(InvalidInputError) as info:
        compile_project(root, out=tmp_path / "out")
    assert [(p.path, p.line, p.rule) for p in info.value.problems] == [("flags/bad.yaml", 5, "schema")]
    assert not (tmp_path / "out" / "staging").exists()


def test_empty_inventory_compiles(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_config(root, {"on_flag": {"key": "on_flag", "description": "d", "state": "on"}}, {"staging": []})
    compile_project(root, out=tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "staging" / "manifest.json").read_text())
    assert manifest["tenants"] == {} and manifest["flags"] == ["on_flag"]
    assert list((tmp_path / "out" / "staging" / "tenants").iterdir()) == []


# --------------------------------------------------------------------------- --tenants

EXPORT = [{"id": "t_new_1", "slug": "newcomer", "plan": "enterprise"},
          {"id": "t_new_2", "slug": "acme", "plan": "free", "partnerSlug": "nordcloud-it"}]


def targeted_repo(root: Path) -> None:
    write_config(root, {"pilot": {"key": "pilot", "description": "d", "state": "targeted",
                                  "scope": {"tenantSlugs": ["acme", "offboarded"]}},
                        "ent": {"key": "ent", "description": "d", "state": "targeted",
                                "scope": {"plans": ["enterprise"]}}},
                 {"production": [{"id": "t_1", "slug": "acme", "plan": "starter"},
                                 {"id": "t_2", "slug": "offboarded", "plan": "free"}],
                  "staging": [{"id": "t_9", "slug": "stage-only", "plan": "free"}]})


def test_tenants_from_a_file(tmp_path: Path, flagops, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    targeted_repo(root)
    work = tmp_path / "work"
    work.mkdir()
    (work / "export.json").write_text(json.dumps(EXPORT))
    (work / "export.yaml").write_text("- id: t_y\n  slug: yaml-tenant\n  plan: enterprise\n")
    monkeypatch.chdir(work)
    run = flagops("--root", "../repo", "compile", "--env", "production", "--tenants", "export.json",
                  "--out", "out")
    assert run.code == 0, run.err
    # "offboarded" is not in the export: a warning, never a blocked publish
    assert 'warning: tenant "offboarded" is in no tenant inventory' in run.err
    base = work / "out" / "production"
    assert sorted(p.name for p in (base / "tenants").iterdir()) == ["acme.json", "newcomer.json"]
    assert json.loads((base / "tenants" / "newcomer.json").read_text())["flags"] == {"ent": True, "pilot": False}
    assert json.loads((base / "tenants" / "acme.json").read_text())["flags"] == {"ent": False, "pilot": True}
    assert not (work / "out" / "staging").exists()
    run = flagops("--root", "../repo", "compile", "--env", "production", "--tenants", "export.yaml",
                  "--out", "out")
    assert run.code == 0, run.err
    assert sorted(p.name for p in (base / "tenants").iterdir()) == ["yaml-tenant.json"]


def test_tenants_file_missing_or_invalid(tmp_path: Path, flagops) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    targeted_repo(root)
    run = flagops("compile", "--env", "production", "--tenants", str(tmp_path / "nope.json"), root=root)
    assert run.code == 1 and "cannot read tenants from" in run.err and "Traceback" not in run.err
    (tmp_path / "bad.json").write_text('[{"id": "x", "slug": "Bad Slug", "plan": "free"}]')
    run = flagops("compile", "--env", "production", "--tenants", str(tmp_path / "bad.json"),
                  "--out", str(tmp_path / "out"), root=root)
    assert run.code == 1 and "bad.json:1:" in run.err and "(schema)" in run.err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


class _Inventory(http.server.BaseHTTPRequestHandler):
    token = "s3cret-token"
    delay = 0.0

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/slow":
            time.sleep(self.delay)
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error":"unauthorized"}')
            return
        body = json.dumps(EXPORT).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def inventory_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Inventory)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_tenants_from_an_http_url(tmp_path: Path, flagops, monkeypatch, inventory_server: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    targeted_repo(root)
    monkeypatch.setenv("FLAGOPS_TENANTS_TOKEN", _Inventory.token)
    run = flagops("compile", "--env", "production", "--tenants", f"{inventory_server}/tenants",
                  "--out", str(tmp_path / "out"), root=root)
    assert run.code == 0, run.err
    names = sorted(p.name for p in (tmp_path / "out" / "production" / "tenants").iterdir())
    assert names == ["acme.json", "newcomer.json"]


def test_tenants_url_without_a_valid_token(tmp_path: Path, flagops, monkeypatch, inventory_server: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    targeted_repo(root)
    monkeypatch.setenv("FLAGOPS_TENANTS_TOKEN", "wrong")
    run = flagops("compile", "--env", "production", "--tenants", f"{inventory_server}/tenants",
                  "--out", str(tmp_path / "out"), root=root)
    assert run.code == 1
    assert "HTTP 401" in run.err and "FLAGOPS_TENANTS_TOKEN" in run.err and "Traceback" not in run.err
    monkeypatch.delenv("FLAGOPS_TENANTS_TOKEN")
    run = flagops("compile", "--env", "production", "--tenants", f"{inventory_server}/tenants", root=root)
    assert run.code == 1 and "HTTP 401" in run.err
    assert not (tmp_path / "out").exists()


def test_tenants_url_timeout(tmp_path: Path, flagops, monkeypatch, inventory_server: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    targeted_repo(root)
    monkeypatch.setenv("FLAGOPS_TENANTS_TOKEN", _Inventory.token)
    monkeypatch.setenv("FLAGOPS_TENANTS_TIMEOUT", "0.3")
    monkeypatch.setattr(_Inventory, "delay", 1.5)
    started = time.monotonic()
    run = flagops("compile", "--env", "production", "--tenants", f"{inventory_server}/slow", root=root)
    assert time.monotonic() - started < 1.4
    assert run.code == 1
    assert "answer within 0.3s" in run.err and "Traceback" not in run.err


def test_tenants_url_unreachable(tmp_path: Path, flagops) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    targeted_repo(root)
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = flagops("compile", "--env", "production", "--tenants", f"http://127.0.0.1:{port}/t", root=root)
    assert run.code == 1 and "fetching tenants from" in run.err and "Traceback" not in run.err


# --------------------------------------------------------------------------- revision


def _commit(repo: git.Repo, message: str) -> str:
    repo.git.add("-A")
    repo.git.commit("-m", message, "--no-gpg-sign")
    return repo.head.commit.hexsha


@pytest.fixture
def git_env(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name, value in {"GIT_AUTHOR_NAME": "flagops", "GIT_AUTHOR_EMAIL": "flagops@example.org",
                        "GIT_COMMITTER_NAME": "flagops", "GIT_COMMITTER_EMAIL": "flagops@example.org",
                        "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}.items():
        monkeypatch.setenv(name, value)


def test_revision_from_git(tmp_path: Path, git_env: None) -> None:
    root = tmp_path / "repo"
    random_config(root, 11)
    (root / ".gitignore").write_text("out/\n")
    repo = git.Repo.init(root)
    sha = _commit(repo, "flags")

    def revision() -> Any:
        compile_project(root, out=root / "out", environments=["staging"])
        return json.loads((root / "out" / "staging" / "manifest.json").read_text())["revision"]

    assert revision() == sha
    (root / "README.txt").write_text("unrelated change")  # outside flags/: still clean
    assert revision() == sha
    flag = next((root / "flags").iterdir())
    flag.write_text(flag.read_text().replace("random flag", "edited flag"))
    assert revision() == f"{sha}-dirty"
    (root / "flags" / "brand_new.yaml").write_text('{"key": "brand_new", "description": "d", "state": "off"}')
    assert revision() == f"{sha}-dirty"
    sha2 = _commit(repo, "more flags")
    assert revision() == sha2 != sha


def test_revision_in_a_subdirectory_of_a_repository(tmp_path: Path, git_env: None) -> None:
    outer = tmp_path / "mono"
    root = outer / "config" / "flags-repo"
    random_config(root, 12)
    repo = git.Repo.init(outer)
    sha = _commit(repo, "all")
    compile_project(root, out=tmp_path / "out", environments=["staging"])
    assert json.loads((tmp_path / "out" / "staging" / "manifest.json").read_text())["revision"] == sha


def test_revision_is_null_outside_git(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    random_config(root, 13)
    compile_project(root, out=tmp_path / "out", environments=["staging"])
    assert json.loads((tmp_path / "out" / "staging" / "manifest.json").read_text())["revision"] is None


# --------------------------------------------------------------------------- snapshot, all or nothing


def test_snapshot_at_200_flags_costs_about_60_bytes_a_tenant(tmp_path: Path) -> None:
    rng = random.Random(4)
    tenants = [{"id": f"t{i}", "slug": f"tenant-{i:05d}", "plan": rng.choice(PLANS)} for i in range(500)]
    flags = {f"flag_{i:03d}": {"key": f"flag_{i:03d}", "description": "d", "state": "rollout", "pct": 50}
             for i in range(200)}
    write_config(tmp_path / "repo", flags, {"production": tenants})
    compile_project(tmp_path / "repo", out=tmp_path / "out")
    size = (tmp_path / "out" / "production" / "snapshot.json").stat().st_size
    # "slug":"<36 base64 chars>", per tenant: the slug plus 42 bytes
    assert size < 500 * (len("tenant-00000") + 43) + 4000
    doc = json.loads((tmp_path / "out" / "production" / "snapshot.json").read_bytes())
    assert len(doc["tenants"]["tenant-00000"]) == 36


def test_a_failure_in_any_environment_leaves_every_previous_output(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    flags, _ = random_config(root, 11)
    out = tmp_path / "out"
    compile_project(root, out=out)
    before, names_before = snapshot(out, hidden=True), names(out)
    key = sorted(flags)[0]
    flag = dict(flags[key], state="on")
    flag.pop("pct", None)
    flag.pop("scope", None)
    (root / "flags" / f"{key}.yaml").write_text(json.dumps(flag))

    # 1. staging fails (a full disk while writing the last environment): nothing is replaced
    real_stage = bundles.stage_environment

    def failing_stage(rules: Any, tenants: Any, environment: str, *args: Any, **kwargs: Any) -> Any:
        if environment == "staging":
            raise OSError(28, "No space left on device")
        return real_stage(rules, tenants, environment, *args, **kwargs)

    monkeypatch.setattr("flagops.compile.stage_environment", failing_stage)
    with pytest.raises(OSError):
        compile_project(root, out=out)
    monkeypatch.undo()
    assert snapshot(out, hidden=True) == before and names(out) == names_before

    # 2. the swap of one environment's directory fails after others were put in place
    real_replace = os.replace

    def refusing_replace(src: Any, dst: Any) -> None:
        if Path(dst) == out / "staging" and ".build-" in Path(src).name:
            raise PermissionError(1, "Operation not permitted", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", refusing_replace)
    with pytest.raises(PermissionError):
        compile_project(root, out=out)
    monkeypatch.undo()
    assert snapshot(out, hidden=True) == before and names(out) == names_before
    compile_project(root, out=out)
    compile_project(root, out=tmp_path / "fresh")
    assert snapshot(out) == snapshot(tmp_path / "fresh")


def names(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def test_an_immutable_environment_directory_fails_the_whole_compile(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    flags, _ = random_config(root, 12)
    out = tmp_path / "out"
    compile_project(root, out=out)
    key = sorted(flags)[0]
    (root / "flags" / f"{key}.yaml").write_text(json.dumps({"key": key, "description": "d", "state": "on"}))
    if subprocess.run(["chattr", "+i", str(out / "staging")], capture_output=True).returncode != 0:
        pytest.skip("chattr +i needs root and a file system that supports it")
    try:
        before = snapshot(out)
        with pytest.raises(OSError):
            compile_project(root, out=out)
        assert snapshot(out) == before
    finally:
        subprocess.run(["chattr", "-i", str(out / "staging")], check=True)


def test_a_tampered_bundle_with_an_old_mtime_is_rewritten(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    random_config(root, 7)
    out = tmp_path / "out"
    compile_project(root, out=out)
    compile_project(root, out=tmp_path / "fresh")
    state = out / ".flagops-production.state"
    victims = sorted((out / "production" / "tenants").iterdir())[:2]
    same_size = victims[0].read_bytes().replace(b"true", b"TRUE")
    victims[0].write_bytes(same_size if same_size != victims[0].read_bytes() else b"x" * victims[0].stat().st_size)
    victims[1].write_bytes(b"{}\n")
    for victim in victims:  # the mtime says "not touched since the last compile"
        subprocess.run(["touch", "-r", str(state), str(victim)], check=True)
        os.utime(victim, ns=(state.stat().st_atime_ns, state.stat().st_mtime_ns - 10**9))
    result = compile_project(root, out=out)
    production = next(e for e in result.environments if e.environment == "production")
    assert production.repaired == 2 and production.rewritten == 2
    assert snapshot(out) == snapshot(tmp_path / "fresh")
    # and an untouched output is trusted: nothing rewritten, nothing read twice
    assert all(e.rewritten == 0 for e in compile_project(root, out=out).environments)


def test_leftovers_of_killed_compiles_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    random_config(root, 2)
    out = tmp_path / "out"
    compile_project(root, out=out)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = [out / f".production.build-{dead.pid}-0123abcd", out / f".staging.update-{dead.pid}-89abcdef",
             out / f".catalog.json.tmp.{dead.pid}-00ff00ff.tmp"]
    old = out / ".production.build-k2j4_x9q"  # an older compile's name, without its pid
    live = out / f".production.build-{os.getpid()}-deadbeef"  # a compile still running
    for path in [*stale[:2], old, live]:
        (path / "tenants").mkdir(parents=True)
        (path / "tenants" / "a.json").write_text("{}")
    stale[2].write_text("{}")
    os.utime(old / "tenants", (0, 0))
    os.utime(old, (0, 0))
    compile_project(root, out=out)
    names = {p.name for p in out.iterdir()}
    assert not {p.name for p in [*stale, old]} & names
    assert live.name in names


@pytest.mark.parametrize("slugs", [
    [],
    ["solo"],
    ["b-tenant", "a", "a-longer-tenant-slug-than-the-others", "c9"],
    ["zürich-gmbh", "ærø", "abc", "日本-tenant", "emoji-🚀"],  # multi-byte UTF-8, sorted by code point
    ['odd"quote', "back\\slash", "plain"],  # escaped: the exact fallback
])
@pytest.mark.parametrize("flags", [0, 1, 9, 200])
def test_assembled_manifest_and_snapshot_equal_dumps(slugs: list[str], flags: int) -> None:
    """The table-built tenants objects are byte for byte ``dumps`` of the reference documents."""
    import numpy as np

    from flagops.layout import SlugTable, manifest_bytes, pack, snapshot_bytes

    rng = random.Random(len(slugs) * 1000 + flags)
    keys = [f"k{i:03d}" for i in range(flags)]
    matrix = np.array([[rng.random() < 0.5 for _ in keys] for _ in slugs], dtype=bool).reshape(len(slugs), flags)
    digests = [hashlib.sha256(s.encode("utf-8")).digest() for s in slugs]
    manifest = {"schemaVersion": 1, "environment": "production", "revision": "abc", "flags": keys,
                "tenants": {s: "sha256:" + d.hex() for s, d in zip(slugs, digests)}}
    assert manifest_bytes("production", "abc", keys, slugs, digests) == dumps(manifest)
    rows = {s: [bool(v) for v in matrix[i]] for i, s in enumerate(slugs)}
    assert (snapshot_bytes("production", None, keys, slugs, pack(matrix))
            == dumps(snapshot_document("production", None, keys, rows)))
    # As a compile shares them: the order and the rows filled once, in arrays of its own.
    order, encoded = np.zeros(len(slugs), dtype=np.int64), np.zeros((len(slugs), SlugTable.encoded_width(slugs)),
                                                                     dtype=np.uint8)
    table = SlugTable(slugs, order, encoded if SlugTable.fill(slugs, order, encoded) else None)
    assert manifest_bytes("production", "abc", keys, slugs, digests, table) == dumps(manifest)
    assert (snapshot_bytes("production", None, keys, slugs, pack(matrix), table)
            == dumps(snapshot_document("production", None, keys, rows)))


def _spread_repo(root: Path, tenants: list[dict[str, Any]]) -> None:
    (root / "flags").mkdir(parents=True)
    (root / "flags" / "roll.yaml").write_text(
        "key: roll\ndescription: a rollout\nowner: a@b.eu\nstate: rollout\npct: 30\n", encoding="utf-8")
    (root / "tenants").mkdir()
    (root / "tenants" / "production.json").write_text(json.dumps(tenants), encoding="utf-8")


@pytest.mark.parametrize("broken", ["slug", "plan"])
def test_invalid_input_is_refused_before_any_bundle_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               broken: str) -> None:
    """The validation runs beside the first hashing: refused input still writes no file, anywhere."""
    monkeypatch.setenv("FLAGOPS_JOBS", "2")
    monkeypatch.setattr(bundles, "PARALLEL_WRITE_MIN", 100)
    monkeypatch.setattr(bundles, "CHUNK", 50)  # many chunks: the worker hashes while this process validates
    tenants = [{"id": f"t-{i}", "slug": f"tenant-{i}", "plan": "free"} for i in range(3000)]
    if broken == "slug":
        tenants[2500]["slug"] = "../../../../escaped"  # a file name outside the output, were it written
    else:
        del tenants[2500]["plan"]  # the index could not even be built from it
    root, out = tmp_path / "repo", tmp_path / "work" / "out"
    _spread_repo(root, tenants)
    with pytest.raises(InvalidInputError) as refused:
        compile_project(root, out=out)
    assert any(p.path == "tenants/production.json" for p in refused.value.problems)
    assert not out.exists() and not (tmp_path / "escaped.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "work"]


def test_valid_input_compiles_the_same_beside_the_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tenants = [{"id": f"t-{i}", "slug": f"tenant-{i}", "plan": "free"} for i in range(3000)]
    _spread_repo(tmp_path / "repo", tenants)
    monkeypatch.setenv("FLAGOPS_JOBS", "1")
    compile_project(tmp_path / "repo", out=tmp_path / "one")
    monkeypatch.setenv("FLAGOPS_JOBS", "2")
    monkeypatch.setattr(bundles, "PARALLEL_WRITE_MIN", 100)
    monkeypatch.setattr(bundles, "CHUNK", 50)
    compile_project(tmp_path / "repo", out=tmp_path / "two")
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one" / "production").rglob("*"))
    assert files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two" / "production").rglob("*"))
    for rel in files:
        if (tmp_path / "one" / rel).is_file():
            assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()
    on = json.loads((tmp_path / "two" / "production" / "manifest.json").read_bytes())
    assert len(on["tenants"]) == 3000
