"""The service client against real compiled bundles, over file:// and a real local HTTP server
(ETags, 304s and injected faults). The S3 tests are in test_client_s3.py."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from flagops.compile import compile_project
from flagops_client import FlagClient, evaluate
from flagops_client.testing import BundleServer

ENV = "production"
TENANTS = """
- {id: "ten-001", slug: acme, plan: enterprise}
- {id: "ten-002", slug: globex, plan: free, partnerSlug: northwind}
- {id: "ten-003", slug: initech, plan: business}
- {id: "ten-004", slug: umbrella, plan: starter, partnerSlug: northwind}
- {id: "ten-005", slug: hooli, plan: enterprise}
- {id: "ten-006", slug: stark, plan: business}
"""
SLUGS = ["acme", "globex", "initech", "umbrella", "hooli", "stark"]


def write_flags(root: Path, billing_pct: int = 50, dark_plans: str = "[enterprise]") -> None:
    flags = root / "flags"
    flags.mkdir(parents=True, exist_ok=True)
    (root / "tenants").mkdir(exist_ok=True)
    (root / "tenants" / f"{ENV}.yaml").write_text(textwrap.dedent(TENANTS).lstrip(), encoding="utf-8")
    docs = {
        "new_billing": f"state: rollout\npct: {billing_pct}\n",
        "dark_mode": f"state: targeted\nscope:\n  plans: {dark_plans}\n",
        "partner_portal": "state: targeted\nscope:\n  partnerSlugs: [northwind]\n",
        "always_on": "state: \"on\"\n",
    }
    for key, body in docs.items():
        (flags / f"{key}.yaml").write_text(f"key: {key}\ndescription: {key} for tests\n{body}", encoding="utf-8")


def compile_to(root: Path, out: Path) -> Path:
    compile_project(root, environments=[ENV], out=out)
    return out


def bundle(out: Path, slug: str) -> dict[str, bool]:
    return json.loads((out / ENV / "tenants" / f"{slug}.json").read_bytes())["flags"]


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    write_flags(tmp_path / "repo")
    return compile_to(tmp_path / "repo", tmp_path / "dist")


@pytest.fixture
def server(dist: Path) -> Iterator[BundleServer]:
    srv = BundleServer(dist)
    yield srv
    try:
        srv.stop()
    except Exception:
        pass


def client(base: str, **kw) -> FlagClient:
    kw.setdefault("refresh_interval", None)
    kw.setdefault("timeout", 1.0)
    return FlagClient(base, ENV, **kw)


# ---------------------------------------------------------------- values

@pytest.mark.parametrize("scheme", ["file", "http"])
def test_values_equal_the_compiled_bundles(scheme, dist, server):
    base = dist.as_uri() if scheme == "file" else server.url
    with client(base) as c:
        for slug in SLUGS:
            expected = bundle(dist, slug)
            assert c.flags(slug) == expected
            for key, value in expected.items():
                assert c.is_enabled(key, slug, default=not value) is value
        assert c.status().tenants == len(SLUGS)


def test_reads_of_tenants_in_memory_do_no_io(server):
    with client(server.url) as c:
        c.is_enabled("always_on", "acme")
        server.reset_counts()
        assert all(c.is_enabled("always_on", "acme") for _ in range(10_000))
        assert c.flags("acme") and c.resolve("always_on", "acme").reason == "STATIC"
        assert server.count() == 0


def test_a_restart_from_cache_dir_checks_the_store_at_once(tmp_path, server):
    cache = tmp_path / "cache"
    with client(server.url, cache_dir=cache) as c:
        c.is_enabled("always_on", "acme")
    server.reset_counts()
    with client(server.url, cache_dir=cache, refresh_interval=60.0) as c:
        deadline = time.monotonic() + 3
        while server.count(304) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.count(304, "/tenants/acme.json") == 1  # the cached ETag still matches


def test_flags_returns_a_copy(server):
    with client(server.url) as c:
        mine = c.flags("acme")
        mine["always_on"] = False
        assert c.is_enabled("always_on", "acme") is True


def test_unknown_flag_and_bad_tenants_answer_the_default_without_io(server):
    with client(server.url) as c:
        assert c.is_enabled("no_such_flag", "acme", default=True) is True
        assert c.resolve("no_such_flag", "acme").error_code == "FLAG_NOT_FOUND"
        server.reset_counts()
        for tenant in (None, 123, ["acme"], "../etc/passwd", "Acme", "", "a" * 100):
            assert c.is_enabled("always_on", tenant, default=True) is True  # type: ignore[arg-type]
            assert c.flags(tenant) == {}  # type: ignore[arg-type]
        assert c.is_enabled(None, "acme", default=True) is True  # type: ignore[arg-type]
        assert server.count() == 0


# ---------------------------------------------------------------- conditional refresh

def test_unchanged_bundles_cost_one_304_each_and_no_parsing(server):
    with client(server.url) as c:
        for slug in SLUGS:
            c.is_enabled("always_on", slug)
        before = {slug: c._tenants[slug].flags for slug in SLUGS}
        server.reset_counts()
        assert c.refresh() is True
        assert server.count(304, ".json") == len(SLUGS) and server.count(200, "/tenants/acme.json") == 0
        # Not parsed again: the very same immutable snapshot stays in use.
        assert all(c._tenants[slug].flags is before[slug] for slug in SLUGS)
        assert c.status().not_modified >= len(SLUGS)


def test_if_modified_since_when_the_store_sends_no_etag(server):
    server.etags = False
    # Last-Modified validates only once a second older than the response (one-second resolution).
    for path in server.root.rglob("*.json"):
        os.utime(path, (time.time() - 5, time.time() - 5))
    with client(server.url) as c:
        assert c.flags("acme")
        server.reset_counts()
        c.refresh()
        assert server.count(304, "/tenants/acme.json") == 1


def test_file_base_url_unchanged_file_is_not_reread(dist):
    with client(dist.as_uri()) as c:
        c.is_enabled("always_on", "acme")
        snapshot = c._tenants["acme"].flags
        assert c.refresh() is True
        assert c._tenants["acme"].flags is snapshot


def test_republish_is_seen_within_one_refresh_interval(tmp_path, dist, server):
    interval = 0.4
    with client(server.url, refresh_interval=interval) as c:
        assert c.is_enabled("dark_mode", "initech") is False
        write_flags(tmp_path / "repo", dark_plans="[business]")
        compile_to(tmp_path / "repo", dist)
        published = time.monotonic()
        while not c.is_enabled("dark_mode", "initech") and time.monotonic() - published < 5:
            time.sleep(0.02)
        seen = time.monotonic() - published
        assert c.is_enabled("dark_mode", "initech") is True
        assert seen <= interval + 0.5, seen
        assert c.flags("acme") == bundle(dist, "acme")


# ---------------------------------------------------------------- bad documents

BAD_DOCUMENTS = {
    "truncated": lambda good: good[: len(good) // 2],
    "not json": lambda good: b"<html>502 Bad Gateway</html>",
    "empty": lambda good: b"",
    "wrong tenant": lambda good: good.replace(b'"tenant":"acme"', b'"tenant":"globex"'),
    "wrong environment": lambda good: good.replace(b'"environment":"production"', b'"environment":"staging"'),
    "schema version": lambda good: good.replace(b'"schemaVersion":1', b'"schemaVersion":2'),
    "non-boolean value": lambda good: good.replace(b'"always_on":true', b'"always_on":"yes"'),
    "flags not an object": lambda good: b'{"environment":"production","flags":[],"schemaVersion":1,"tenant":"acme"}',
}


@pytest.mark.parametrize("kind", sorted(BAD_DOCUMENTS))
def test_a_bad_document_never_replaces_good_flags(kind, dist, server, caplog):
    path = dist / ENV / "tenants" / "acme.json"
    good = path.read_bytes()
    with client(server.url) as c:
        before = c.flags("acme")
        server.replace[f"/{ENV}/tenants/acme.json"] = BAD_DOCUMENTS[kind](good)
        with caplog.at_level(logging.WARNING, logger="flagops_client"):
            assert c.refresh() is False
            assert c.refresh() is False
        assert c.flags("acme") == before
        assert c.is_enabled("always_on", "acme") is True
        assert "acme.json" in (c.status().last_error or "")
        assert len([r for r in caplog.records if "rejected" in r.getMessage()]) == 1  # one per streak
        # The good document is taken again once it is back.
        server.replace.clear()
        assert c.refresh() is True


def test_a_bad_document_for_a_new_tenant_answers_the_default(dist, server):
    server.replace[f"/{ENV}/tenants/acme.json"] = b'{"truncated":'
    with client(server.url) as c:
        assert c.is_enabled("always_on", "acme", default=False) is False
        assert c.resolve("always_on", "acme").reason == "ERROR"


def test_a_body_cut_off_on_the_wire_is_rejected(server):
    with client(server.url) as c:
        before = c.flags("acme")
        changed = json.dumps({"schemaVersion": 1, "environment": ENV, "tenant": "acme",
                              "flags": {**before, "always_on": False}}).encode()
        server.replace[f"/{ENV}/tenants/acme.json"] = changed
        server.truncate = True
        assert c.refresh() is False
        assert c.flags("acme") == before
        server.truncate = False
        assert c.refresh() is True
        assert c.is_enabled("always_on", "acme") is False


# ---------------------------------------------------------------- outages

def test_5xx_keeps_last_known_good_one_warning_per_streak_then_recovers(server, caplog):
    with client(server.url) as c:
        before = {slug: c.flags(slug) for slug in SLUGS}
        server.status = 503
        with caplog.at_level(logging.INFO, logger="flagops_client"):
            for _ in range(3):
                assert c.refresh() is False
            assert {slug: c.flags(slug) for slug in SLUGS} == before
            status = c.status()
            assert status.failures == 3 and status.stale and "503" in status.last_error
            server.status = None
            assert c.refresh() is True
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "head.json" not in r.getMessage()]
        assert len(warnings) == 1 and "503" in warnings[0].getMessage()
        assert any("works again" in r.getMessage() for r in caplog.records)
        assert c.status().failures == 0 and not c.status().stale


def test_a_failing_store_is_not_asked_once_per_tenant(server):
    with client(server.url) as c:
        for slug in SLUGS:
            c.is_enabled("always_on", slug)
        server.status = 500
        server.reset_counts()
        c.refresh()
        assert server.count() == 1  # the round stops at the first failure


def test_slow_first_load_is_bounded_by_the_timeout(server):
    server.delay = 2.0
    with client(server.url, timeout=0.3) as c:
        started = time.monotonic()
        assert c.is_enabled("always_on", "acme", default=False) is False
        assert time.monotonic() - started < 1.0
        # A tenant whose load failed does not block the next reads.
        started = time.monotonic()
        for _ in range(100):
            c.is_enabled("always_on", "acme")
        assert time.monotonic() - started < 0.25  # less than one timeout: no read waited for the server
        assert "timed out" in (c.status().last_error or "")
        server.delay = 0
        assert c.refresh() is True
        assert c.is_enabled("always_on", "acme") is True


def test_refused_connections_never_reach_the_caller(server):
    with client(server.url, timeout=0.5) as c:
        assert c.is_enabled("always_on", "acme") is True
        server.stop()
        assert c.refresh() is False
        assert c.is_enabled("always_on", "acme") is True
        assert c.flags("globex") == {}
        assert c.is_enabled("always_on", "globex", default=True) is True
        assert c.resolve("always_on", "globex").reason == "ERROR"
        assert c.status().last_error


def test_backoff_grows_with_jitter_and_is_capped(dist):
    with client(dist.as_uri(), refresh_interval=10.0) as c:
        normal = [c._next_delay() for _ in range(50)]
        assert all(8.0 <= d <= 10.0 for d in normal) and len(set(normal)) > 1
        c._streak = 1
        first = [c._next_delay() for _ in range(50)]
        assert all(0.5 <= d <= 1.0 for d in first)
        c._streak = 4
        assert all(4.0 <= c._next_delay() <= 8.0 for _ in range(50))
        c._streak = 30
        assert all(20.0 <= c._next_delay() <= 40.0 for _ in range(50))


# ---------------------------------------------------------------- cache_dir

CACHE_PROBE = """
import json, sys
from flagops_client import FlagClient
c = FlagClient(sys.argv[1], "production", cache_dir=sys.argv[2], timeout=0.5)
out = {slug: c.flags(slug) for slug in sys.argv[3:]}
out["_default"] = c.is_enabled("always_on", "never-seen", default=True)
s = c.status()
out["_status"] = {"tenants": s.tenants, "age": s.age, "stale": s.stale}
c.close()
print(json.dumps(out))
"""


def test_cache_dir_serves_a_new_process_during_an_outage(tmp_path, dist, server):
    cache = tmp_path / "cache"
    with client(server.url, cache_dir=cache) as c:
        expected = {slug: c.flags(slug) for slug in SLUGS}
    server.stop()
    time.sleep(0.2)
    run = subprocess.run([sys.executable, "-c", CACHE_PROBE, server.url, str(cache), *SLUGS],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert {slug: out[slug] for slug in SLUGS} == expected
    assert out["_default"] is True
    assert out["_status"]["tenants"] == len(SLUGS) and out["_status"]["age"] >= 0.2
    assert "Traceback" not in run.stderr


def test_cache_files_are_written_atomically_and_bad_ones_are_ignored(tmp_path, server):
    cache = tmp_path / "cache"
    with client(server.url, cache_dir=cache) as c:
        c.flags("acme")
        c.flags("globex")
    files = sorted(p.name for p in (cache / ENV / "tenants").iterdir())
    assert files == ["acme.json", "globex.json"]  # no temporary files left behind
    (cache / ENV / "tenants" / "globex.json").write_text('{"document": {"tenant": "acme"')
    (cache / ENV / "tenants" / "evil.json").write_text(json.dumps(
        {"document": {"schemaVersion": 1, "environment": ENV, "tenant": "acme", "flags": {}}}))
    server.stop()
    with client(server.url, cache_dir=cache, timeout=0.3) as c:
        assert set(c._tenants) == {"acme"}
        assert c.is_enabled("always_on", "acme") is True


# ---------------------------------------------------------------- rules.json

def test_a_tenant_without_bundle_is_evaluated_from_the_rules(dist, server):
    rules = json.loads((dist / ENV / "rules.json").read_bytes())["flags"]
    attributes = {"id": "ten-999", "plan": "enterprise", "partnerSlug": "northwind"}
    subject = {**attributes, "slug": "newco"}
    with client(server.url) as c:
        for key, flag in rules.items():
            expected = evaluate({**flag, "key": key}, subject, ENV)
            assert c.is_enabled(key, "newco", default=not expected, attributes=attributes) is expected
        assert c.flags("newco", attributes=attributes) == {
            key: evaluate({**flag, "key": key}, subject, ENV) for key, flag in rules.items()}
        assert c.resolve("dark_mode", "newco", attributes=attributes).reason == "TARGETING_MATCH"
        # Without attributes: the caller's default.
        assert c.is_enabled("always_on", "newco", default=False) is False
        assert c.resolve("always_on", "newco").reason == "DEFAULT"
        # The rules are fetched once and then refreshed with the tenants.
        assert server.count(200, "rules.json") == 1
        server.reset_counts()
        c.refresh()
        assert server.count(304, "rules.json") == 1


def test_private_rules_answer_the_default_and_a_rules_url_can_serve_them(tmp_path, dist, server):
    (dist / ENV / "rules.json").rename(tmp_path / "rules.json")
    attributes = {"id": "ten-999", "plan": "enterprise"}
    with client(server.url) as c:
        assert c.is_enabled("always_on", "newco", default=False, attributes=attributes) is False
    with client(server.url, rules_url=(tmp_path / "rules.json").as_uri()) as c:
        assert c.is_enabled("always_on", "newco", default=False, attributes=attributes) is True


# ---------------------------------------------------------------- memory bound, threads

def test_tenants_in_memory_are_bounded_least_recently_read_first(server):
    with client(server.url, max_tenants=3) as c:
        for slug in ("acme", "globex", "initech"):
            c.is_enabled("always_on", slug)
        c.is_enabled("always_on", "acme")      # acme is now more recent than globex
        c.is_enabled("always_on", "umbrella")  # evicts globex, the least recently read
        assert set(c._tenants) == {"acme", "initech", "umbrella"}
        server.reset_counts()
        c.refresh()
        assert server.count(suffix="/tenants/globex.json") == 0  # evicted tenants are not refreshed
        assert c.is_enabled("always_on", "globex") is True       # and reload on demand


def test_concurrent_first_reads_load_a_tenant_once(server):
    server.delay = 0.2
    with client(server.url) as c:
        results: list[bool] = []
        threads = [threading.Thread(target=lambda: results.append(c.is_enabled("always_on", "acme")))
                   for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [True] * 16
        assert server.count(suffix="/tenants/acme.json") == 1


def test_reads_take_no_lock(server):
    with client(server.url) as c:
        c.is_enabled("always_on", "acme")
        answers: list[bool] = []
        with c._lock, c._cycle_lock:  # a refresh or a load holds these: reads must not wait
            t = threading.Thread(target=lambda: answers.append(c.is_enabled("always_on", "acme")))
            t.start()
            t.join(2)
        assert answers == [True]


def test_one_daemon_thread_refreshes_and_nothing_runs_after_close(server):
    before = set(threading.enumerate())
    c = client(server.url, refresh_interval=0.05)
    for slug in SLUGS:
        c.is_enabled("always_on", slug)
    new = [t for t in threading.enumerate() if t not in before and t.name.startswith("flagops")]
    assert len(new) == 1 and new[0].daemon
    deadline = time.monotonic() + 3
    while server.count(304) < len(SLUGS) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.count(304) >= len(SLUGS)  # the background refresh ran
    c.close()
    assert not new[0].is_alive()
    settled = server.count()
    time.sleep(0.3)
    assert server.count() == settled
    assert c.is_enabled("always_on", "acme") is True           # memory still answers
    assert c.is_enabled("always_on", "never-seen", default=True) is True
    assert server.count() == settled and c.refresh() is False


def test_readers_see_whole_snapshots_while_the_background_swaps_them(dist, server):
    """Every read during constant republishing sees one bundle or the other, never a mix."""
    flipped = json.dumps({"schemaVersion": 1, "environment": ENV, "tenant": "acme",
                          "flags": {k: not v for k, v in bundle(dist, "acme").items()}}).encode()
    path = f"/{ENV}/tenants/acme.json"
    with client(server.url, refresh_interval=0.01) as c:
        versions = {json.dumps(bundle(dist, "acme"), sort_keys=True),
                    json.dumps(json.loads(flipped)["flags"], sort_keys=True)}
        c.is_enabled("always_on", "acme")
        stop = threading.Event()
        seen: set[str] = set()
        errors: list[BaseException] = []

        def read() -> None:
            try:
                while not stop.is_set():
                    snapshot = c.flags("acme")
                    seen.add(json.dumps(snapshot, sort_keys=True))
                    assert type(c.is_enabled("always_on", "acme")) is bool
            except BaseException as exc:  # pragma: no cover (reported below)
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(3)]
        for t in readers:
            t.start()
        started, deadline = time.monotonic(), time.monotonic() + 10.0
        # At least a second of swaps, longer on a loaded machine until the readers saw both versions.
        while time.monotonic() < deadline and (time.monotonic() - started < 1.0 or len(seen) < 2):
            server.replace[path] = flipped
            time.sleep(0.03)
            server.replace.pop(path, None)
            time.sleep(0.03)
        stop.set()
        for t in readers:
            t.join()
        assert not errors
        assert seen == versions


def test_invalid_arguments_fail_at_construction(dist):
    for kwargs in ({"refresh_interval": 0}, {"timeout": 0}, {"max_tenants": 0}):
        with pytest.raises(ValueError):
            FlagClient(dist.as_uri(), ENV, **kwargs)
    for url in ("ftp://example/flags", "file://relative/dir", "http://", "flags/"):
        with pytest.raises(ValueError):
            FlagClient(url, ENV)
    with pytest.raises(ValueError):
        FlagClient(dist.as_uri(), "../prod")


# ---------------------------------------------------------------- standard library only

def test_the_client_imports_nothing_outside_the_standard_library():
    probe = ("import sys, flagops_client, flagops_client.client, flagops_client.testing; "
             "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
             "{'yaml', 'jsonschema', 'click', 'git', 'jinja2', 'flagops', 'boto3', 'openfeature'}); "
             "print(','.join(bad))")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""
    # Everything `import flagops_client` pulls in is the standard library or the package itself.
    probe = ("import sys; before = set(sys.modules); import flagops_client, flagops_client.client; "
             "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    imported = set(run.stdout.split())
    assert "flagops_client" in imported
    assert imported - set(sys.stdlib_module_names) == {"flagops_client"}


# ---------------------------------------------------------------- the shared test vectors

def test_rules_evaluation_in_the_client_matches_the_test_vectors(tmp_path):
    """A tenant with no bundle is evaluated from rules.json exactly as the vectors pin it."""
    from flagops_client.evaluation import STATES, normalise_scope

    cases = json.loads((Path(__file__).parent / "vectors" / "evaluate.json").read_text())["cases"]
    cases = [c for c in cases if c["flag"].get("state") in STATES and 0 <= int(c["flag"].get("pct") or 0) <= 100]
    # Batches where each (environment, key) appears once: one rules.json per batch.
    batches: list[dict[tuple[str, str], dict]] = []
    for case in cases:
        slot = (case["environment"], case["flag"]["key"])
        batch = next((b for b in batches if slot not in b), None)
        if batch is None:
            batch = {}
            batches.append(batch)
        batch[slot] = case
    checked = 0
    for n, batch in enumerate(batches):
        root = tmp_path / f"batch{n}"
        for env in {env for env, _ in batch}:
            flags = {key: {"state": c["flag"]["state"], "pct": int(c["flag"].get("pct") or 0),
                           "scope": normalise_scope(c["flag"].get("scope"))}
                     for (e, key), c in batch.items() if e == env}
            (root / env).mkdir(parents=True)
            (root / env / "rules.json").write_text(json.dumps(
                {"schemaVersion": 1, "environment": env, "flags": flags}))
        clients = {env: FlagClient(root.as_uri(), env, refresh_interval=None) for env, _ in batch}
        for (env, key), case in batch.items():
            tenant = case["tenant"]
            attributes = {k: tenant[k] for k in ("id", "plan", "partnerSlug") if k in tenant}
            got = clients[env].resolve(key, tenant["slug"], default=None, attributes=attributes)
            assert (got.value, got.reason) == (case["expected"], "TARGETING_MATCH"), case["name"]
            checked += 1
        for c in clients.values():
            c.close()
    assert checked == len(cases) > 100


# ---------------------------------------------------------------- https

@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


def test_https_verifies_the_certificate(dist, tls):
    import ssl

    cert, key = tls
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    with BundleServer(dist, ssl_context=server_ctx) as srv:
        assert srv.url.startswith("https://")
        # The system's CAs do not know this certificate: refused, the default answers.
        with client(srv.url) as c:
            assert c.is_enabled("always_on", "acme", default=False) is False
            assert "CERTIFICATE" in (c.status().last_error or "").upper()
        trusted = ssl.create_default_context(cafile=str(cert))
        with client(srv.url, ssl_context=trusted) as c:
            assert c.flags("acme") == bundle(dist, "acme")
            assert c.refresh() is True and c.status().not_modified == 1


def test_a_kept_alive_connection_closed_by_the_store_is_reopened_silently(dist, server, caplog):
    """Stores close idle connections between refreshes: that is no failure."""
    with client(server.url) as c:
        sessions = __import__("flagops_client.client", fromlist=["_Sessions"])._Sessions(c)
        c.is_enabled("always_on", "acme")
        assert c._cycle(sessions) is True          # opens the kept-alive connection
        port = server.port
        server.stop()                              # closes it from the server side
        again = BundleServer(dist, port=port)
        caplog.clear()  # the one warning of a store without a head is already given
        try:
            with caplog.at_level(logging.WARNING, logger="flagops_client"):
                assert c._cycle(sessions) is True
            assert again.count(304, "/tenants/acme.json") == 1 and not caplog.records
        finally:
            sessions.close()
            again.stop()
