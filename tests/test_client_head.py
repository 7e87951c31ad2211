"""The head (change signal, kill fast path) and the snapshot (every tenant from one object),
over a real local HTTP server serving compiled output. Signed reads are in test_client_s3.py."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from flagops_client import FlagClient
from flagops_client.testing import BundleServer, write_head
from test_client import ENV, SLUGS, bundle, client, compile_to, dist, server, write_flags  # noqa: F401

HEAD = f"/{ENV}/head.json"
SNAPSHOT = f"/{ENV}/snapshot.json"


@pytest.fixture
def headed(dist: Path) -> Path:
    write_head(dist, ENV, sequence=1)
    return dist


def bundle_requests(srv: BundleServer) -> int:
    return sum(1 for path, _ in srv.requests if "/tenants/" in path)


def test_nothing_changed_costs_one_request_whatever_the_tenant_count(headed, server):
    with client(server.url) as c:
        assert {s: c.flags(s) for s in SLUGS} == {s: bundle(headed, s) for s in SLUGS}
        server.reset_counts()
        for _ in range(3):
            assert c.refresh() is True
        assert server.requests == [(HEAD, 304)] * 3
        assert c.status().sequence == 1 and c.status().pending == 0


def test_a_kill_in_the_head_reads_false_for_every_tenant_at_once(headed, server):
    with client(server.url) as c:
        assert all(c.is_enabled("always_on", s) for s in SLUGS)
        server.reset_counts()
        write_head(headed, ENV, sequence=2, off=["always_on"])  # an interim head: same revision
        assert c.refresh() is True
        assert server.requests == [(HEAD, 200)]  # no bundle was asked
        assert not any(c.is_enabled("always_on", s, default=True) for s in SLUGS)
        assert not c.flags("acme")["always_on"] and c.resolve("always_on", "acme").reason == "STATIC"
        # A tenant first read after the kill is killed too, and an older head never undoes it.
        write_head(headed, ENV, sequence=1)
        assert c.refresh() is True and c.status().off == ("always_on",)
        assert not c.is_enabled("always_on", "acme") and c.status().sequence == 2
        write_head(headed, ENV, sequence=3)
        assert c.refresh() is True and c.is_enabled("always_on", "acme")


def test_a_new_revision_revalidates_the_bundles_paced(tmp_path, headed, server):
    rate = 20.0
    with client(server.url, revalidate_rate=rate) as c:
        for s in SLUGS:
            c.is_enabled("new_billing", s)
        write_flags(tmp_path / "repo", billing_pct=100)
        compile_to(tmp_path / "repo", headed)
        write_head(headed, ENV, sequence=2)
        server.reset_counts()
        started = time.monotonic()
        assert c.refresh() is True
        elapsed = time.monotonic() - started
        assert bundle_requests(server) == len(SLUGS)
        assert elapsed >= (len(SLUGS) - 1) / rate * 0.9  # never one burst
        assert all(c.is_enabled("new_billing", s) for s in SLUGS)
        server.reset_counts()
        assert c.refresh() is True and server.requests == [(HEAD, 304)]


def test_the_background_polls_the_head_during_a_long_revalidation(tmp_path, headed, server):
    """At one bundle per second, a kill published meanwhile is still seen within an interval."""
    with client(server.url, revalidate_rate=1.0, refresh_interval=0.3) as c:
        for s in SLUGS:
            c.is_enabled("always_on", s)
        write_head(headed, ENV, sequence=2, snapshot=None)  # another content: revalidate all
        time.sleep(0.5)
        write_head(headed, ENV, sequence=3, off=["always_on"], snapshot=None)
        deadline = time.monotonic() + 3
        while c.is_enabled("always_on", "stark") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not c.is_enabled("always_on", "stark") and c.status().pending > 0


def test_a_store_without_a_head_revalidates_every_bundle_and_warns_once(dist, server, caplog):
    with caplog.at_level(logging.WARNING, logger="flagops_client"), client(server.url) as c:
        for s in SLUGS:
            c.is_enabled("always_on", s)
        server.reset_counts()
        assert c.refresh() is True and c.refresh() is True
        assert bundle_requests(server) == 2 * len(SLUGS) and server.count(404, "head.json") == 2
        assert c.status().sequence is None
    assert [r.getMessage() for r in caplog.records].count(
        next(r.getMessage() for r in caplog.records if "head.json" in r.getMessage())) == 1


def test_a_bad_head_is_rejected_and_the_applied_one_stays(headed, server):
    with client(server.url) as c:
        c.is_enabled("always_on", "acme")
        for body in (b"[" * 100_000, b'{"schemaVersion":1}', b"\xff"):
            server.replace[HEAD] = body
            assert c.refresh() is False
            assert c.status().sequence == 1 and "head.json" in c.status().last_error
        assert c.is_enabled("always_on", "acme")


def test_while_the_head_is_unusable_bundles_are_revalidated_as_before(tmp_path, headed, server):
    with client(server.url) as c:
        c.is_enabled("new_billing", "acme")  # held
        server.replace[HEAD] = b"not a head"
        write_flags(tmp_path / "repo", billing_pct=100)
        compile_to(tmp_path / "repo", headed)
        assert c.refresh() is False
        assert c.is_enabled("new_billing", "acme")


# --------------------------------------------------------------------------------- snapshot mode


def test_snapshot_mode_answers_every_tenant_from_one_object(headed, server):
    with FlagClient(server.url, ENV, all_tenants=True, refresh_interval=None, timeout=2.0) as c:
        assert {s: c.flags(s) for s in SLUGS} == {s: bundle(headed, s) for s in SLUGS}
        for s in SLUGS:
            for key, value in bundle(headed, s).items():
                assert c.is_enabled(key, s, default=not value) is value
                assert c.resolve(key, s).reason == "STATIC"
        assert server.count(suffix="/tenants/acme.json") == 0 and server.count(200, SNAPSHOT) == 1
        assert c.resolve("always_on", "nobody").reason == "DEFAULT"
        assert c.status().mode == "snapshot" and c.status().tenants == len(SLUGS)
        server.reset_counts()
        assert c.refresh() is True and server.requests == [(HEAD, 304)]


def test_snapshot_refetched_only_for_a_new_digest_and_checked_against_it(tmp_path, headed, server):
    with FlagClient(server.url, ENV, all_tenants=True, refresh_interval=None) as c:
        before = {s: c.flags(s) for s in SLUGS}
        write_head(headed, ENV, sequence=2, off=["always_on"])  # same snapshot: no refetch
        server.reset_counts()
        assert c.refresh() is True and server.requests == [(HEAD, 200)]
        assert not c.is_enabled("always_on", "acme", default=True)
        # A snapshot whose bytes are not the head's digest (a publish in progress, or tampering).
        write_flags(tmp_path / "repo", billing_pct=100)
        compile_to(tmp_path / "repo", headed)
        write_head(headed, ENV, sequence=3, off=["always_on"], snapshot="sha256:" + "0" * 64)
        assert c.refresh() is False and "digest" in c.status().last_error
        assert {s: c.flags(s) for s in SLUGS} == {s: {k: v and k != "always_on" for k, v in f.items()}
                                                  for s, f in before.items()}
        write_head(headed, ENV, sequence=4)
        assert c.refresh() is True and all(c.is_enabled("new_billing", s) for s in SLUGS)
        assert c.is_enabled("always_on", "acme")


def test_snapshot_cache_dir_serves_a_restart_during_an_outage(tmp_path, headed, server):
    cache = tmp_path / "cache"
    with FlagClient(server.url, ENV, all_tenants=True, refresh_interval=None, cache_dir=cache) as c:
        expected = {s: c.flags(s) for s in SLUGS}
    server.stop()
    with FlagClient(server.url, ENV, all_tenants=True, refresh_interval=None, cache_dir=cache,
                    timeout=0.5) as c:
        assert {s: c.flags(s) for s in SLUGS} == expected
        assert c.refresh() is False and c.status().tenants == len(SLUGS)


def test_snapshot_without_a_head_is_revalidated_conditionally(dist, server):
    with FlagClient(server.url, ENV, all_tenants=True, refresh_interval=None) as c:
        assert c.flags("acme") == bundle(dist, "acme")
        server.reset_counts()
        assert c.refresh() is True
        assert server.requests == [(HEAD, 404), (SNAPSHOT, 304)]


def test_a_hostile_snapshot_never_replaces_the_one_in_use(headed, server):
    with FlagClient(server.url, ENV, all_tenants=True, refresh_interval=None) as c:
        good = c.flags("acme")
        doc = json.loads((headed / ENV / "snapshot.json").read_bytes())
        for bad in ({**doc, "tenants": {"acme": "!!!!"}}, {**doc, "flags": doc["flags"][::-1]},
                    {**doc, "tenants": {"ACME": doc["tenants"]["acme"]}}):
            data = json.dumps(bad).encode()
            server.replace[SNAPSHOT] = data
            write_head(headed, ENV, sequence=2, snapshot="sha256:" + __import__("hashlib").sha256(data).hexdigest())
            assert c.refresh() is False and c.flags("acme") == good
