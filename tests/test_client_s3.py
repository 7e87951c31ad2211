"""The service client against the real local S3 server (SeaweedFS) over plain HTTP: bundles
published with boto3, read anonymously through a bucket policy, as services read them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import s3server
from s3fixtures import make_client
from test_client import CACHE_PROBE, ENV, SLUGS, bundle, compile_to, write_flags

from flagops_client import FlagClient

PREFIX = "flags"


class Store:
    """A bucket the compiled output is published to (only objects whose bytes changed)."""

    def __init__(self, s3: Any, endpoint_url: str, bucket: str):
        self.s3, self.bucket = s3, bucket
        self.url = f"{endpoint_url}/{bucket}/{PREFIX}"
        self.sent: dict[str, bytes] = {}
        policy = {"Version": "2012-10-17", "Statement": [{
            "Sid": "PublicBundles", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/{PREFIX}/*/tenants/*"]}]}
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}", Body=body,
                           ContentType="application/json", CacheControl="max-age=10")
        self.sent[key] = body

    def publish(self, dist: Path) -> int:
        changed = 0
        for path in sorted((dist / ENV).rglob("*.json")):
            key = path.relative_to(dist).as_posix()
            body = path.read_bytes()
            if self.sent.get(key) != body:
                self.put(key, body)
                changed += 1
        return changed


@pytest.fixture
def published(tmp_path: Path, s3_server, s3_bucket) -> tuple[Store, Path]:
    write_flags(tmp_path / "repo")
    dist = compile_to(tmp_path / "repo", tmp_path / "dist")
    store = Store(s3_bucket.client, s3_server.endpoint_url, s3_bucket)
    store.publish(dist)
    return store, dist


def test_values_equal_the_compiled_bundles_and_unchanged_costs_a_304(published):
    store, dist = published
    with FlagClient(store.url, ENV, refresh_interval=None, timeout=2.0) as c:
        for slug in SLUGS:
            assert c.flags(slug) == bundle(dist, slug)
            for key, value in bundle(dist, slug).items():
                assert c.is_enabled(key, slug, default=not value) is value
        fetched = c.status().fetched
        assert fetched == len(SLUGS)
        assert c.refresh() is True
        status = c.status()
        assert status.fetched == fetched                 # nothing downloaded again
        assert status.not_modified == len(SLUGS)         # one 304 per unchanged bundle
        assert status.last_error is None and not status.stale
        # The manifest is private under the bucket policy: no revision, and no error either.
        assert status.revision is None


def test_a_republish_is_seen_within_one_refresh_interval(tmp_path, published):
    store, dist = published
    interval = 0.5
    with FlagClient(store.url, ENV, refresh_interval=interval, timeout=2.0) as c:
        assert c.is_enabled("dark_mode", "initech") is False
        write_flags(tmp_path / "repo", dark_plans="[business]")
        compile_to(tmp_path / "repo", dist)
        assert store.publish(dist) >= 2  # initech's and stark's bundles, rules, manifest
        published_at = time.monotonic()
        while not c.is_enabled("dark_mode", "initech") and time.monotonic() - published_at < 5:
            time.sleep(0.02)
        assert c.is_enabled("dark_mode", "initech") is True
        assert time.monotonic() - published_at <= interval + 0.5
        assert {slug: c.flags(slug) for slug in SLUGS} == {slug: bundle(dist, slug) for slug in SLUGS}


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "wrong tenant"])
def test_a_bad_object_is_rejected_and_the_previous_flags_stay(kind, published):
    store, dist = published
    good = (dist / ENV / "tenants" / "acme.json").read_bytes()
    bad = {"corrupt": b"\x00\xff not json at all",
           "truncated": good[:-20],
           "wrong tenant": (dist / ENV / "tenants" / "globex.json").read_bytes()}[kind]
    with FlagClient(store.url, ENV, refresh_interval=None) as c:
        before = c.flags("acme")
        store.put(f"{ENV}/tenants/acme.json", bad)
        assert c.refresh() is False
        assert c.flags("acme") == before
        assert "acme.json" in (c.status().last_error or "")
        store.put(f"{ENV}/tenants/acme.json", good)
        assert c.refresh() is True and c.flags("acme") == before


def test_private_rules_through_a_presigned_url(published):
    store, dist = published
    attributes = {"id": "ten-777", "plan": "enterprise"}
    with FlagClient(store.url, ENV, refresh_interval=None) as c:
        # Anonymous reads of rules.json are refused by the policy: the caller's default.
        assert c.is_enabled("dark_mode", "newco", default=False, attributes=attributes) is False
    rules_url = store.s3.generate_presigned_url(
        "get_object", Params={"Bucket": store.bucket, "Key": f"{PREFIX}/{ENV}/rules.json"}, ExpiresIn=600)
    with FlagClient(store.url, ENV, refresh_interval=None, rules_url=rules_url) as c:
        res = c.resolve("dark_mode", "newco", default=False, attributes=attributes)
        assert (res.value, res.reason) == (True, "TARGETING_MATCH")
        assert c.refresh() is True and c.status().not_modified >= 1  # the rules: a 304 too


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Any]:
    """A private server this test may stop (the shared one serves other tests)."""
    try:
        state, _ = s3server.start(tmp_path / "s3")
    except (OSError, RuntimeError, TimeoutError) as exc:
        pytest.skip(f"cannot start a private S3 server: {exc}")
    try:
        yield state
    finally:
        s3server.stop(tmp_path / "s3")


def test_server_stopped_memory_then_cache_dir_in_a_new_process(tmp_path, own_server):
    s3 = make_client(own_server)
    s3.create_bucket(Bucket="flags-outage")
    store = Store(s3, own_server.endpoint_url, "flags-outage")
    write_flags(tmp_path / "repo")
    dist = compile_to(tmp_path / "repo", tmp_path / "dist")
    store.publish(dist)
    cache = tmp_path / "cache"
    expected = {slug: bundle(dist, slug) for slug in SLUGS}

    c = FlagClient(store.url, ENV, cache_dir=cache, refresh_interval=None, timeout=0.5)
    try:
        assert {slug: c.flags(slug) for slug in SLUGS} == expected
        assert s3server.stop(tmp_path / "s3")

        assert c.refresh() is False                        # the store is gone...
        assert {slug: c.flags(slug) for slug in SLUGS} == expected   # ...memory answers
        assert c.is_enabled("always_on", "acme") is True
        assert c.is_enabled("always_on", "never-seen", default=True) is True
        status = c.status()
        assert status.stale and status.failures == 1 and status.last_error
        assert status.last_success is None or status.last_success < time.time()
    finally:
        c.close()

    run = subprocess.run([sys.executable, "-c", CACHE_PROBE, store.url, str(cache), *SLUGS],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert {slug: out[slug] for slug in SLUGS} == expected
    assert out["_default"] is True and out["_status"]["tenants"] == len(SLUGS)
    assert "Traceback" not in run.stderr


def test_end_to_end_flagops_publish_then_the_client_reads(tmp_path, flagops, s3_server, s3_bucket, s3_env):
    """`flagops publish` to the store, `flagops bucket-policy` applied, the client reads anonymously."""
    write_flags(tmp_path / "repo")
    dist = compile_to(tmp_path / "repo", tmp_path / "dist")
    run = flagops("bucket-policy", "--bucket", s3_bucket, "--prefix", PREFIX)
    assert run.code == 0, run.err
    s3_bucket.client.put_bucket_policy(Bucket=s3_bucket, Policy=run.out)
    run = flagops("publish", "--env", ENV, "--target", f"s3://{s3_bucket}/{PREFIX}", "--from", str(dist),
                  root=tmp_path / "repo")
    assert run.code == 0, run.err
    url = f"{s3_server.endpoint_url}/{s3_bucket}/{PREFIX}"
    with FlagClient(url, ENV, refresh_interval=None) as c:
        assert {slug: c.flags(slug) for slug in SLUGS} == {slug: bundle(dist, slug) for slug in SLUGS}
        # Nothing changed: one conditional GET of the head answers for every tenant.
        before = c.status().requests
        assert c.refresh() is True and c.status().not_modified == 1 and c.status().requests == before + 1
        # The flip of one flag, published again, reaches the client on its next refresh.
        write_flags(tmp_path / "repo", billing_pct=100)
        compile_to(tmp_path / "repo", dist)
        run = flagops("publish", "--env", ENV, "--target", f"s3://{s3_bucket}/{PREFIX}", "--from", str(dist),
                      root=tmp_path / "repo")
        assert run.code == 0, run.err
        assert c.refresh() is True
        assert all(c.is_enabled("new_billing", slug) for slug in SLUGS)


def publish(flagops, root: Path, dist: Path, bucket: str) -> None:
    run = flagops("publish", "--env", ENV, "--target", f"s3://{bucket}/{PREFIX}", "--from", str(dist), root=root)
    assert run.code == 0, run.err


@pytest.mark.parametrize("all_tenants", [False, True], ids=["tenant mode", "snapshot mode"])
def test_signed_reads_of_a_private_store_head_and_snapshot_included(tmp_path, flagops, s3_server, s3_bucket,
                                                                  s3_env, all_tenants):
    """`flagops publish` to a private bucket; the client reads s3:// with the standard chain."""
    repo = tmp_path / "repo"
    write_flags(repo)
    dist = compile_to(repo, tmp_path / "dist")
    publish(flagops, repo, dist, s3_bucket)
    anonymous = FlagClient(f"{s3_server.endpoint_url}/{s3_bucket}/{PREFIX}", ENV, refresh_interval=None,
                           all_tenants=all_tenants)
    assert anonymous.flags("acme") == {}  # private: nothing without signing
    anonymous.close()
    with FlagClient(f"s3://{s3_bucket}/{PREFIX}", ENV, refresh_interval=None, all_tenants=all_tenants) as c:
        assert {s: c.flags(s) for s in SLUGS} == {s: bundle(dist, s) for s in SLUGS}
        status = c.status()
        assert status.sequence is not None and status.mode == ("snapshot" if all_tenants else "tenant")
        requests = status.requests
        assert c.refresh() is True and c.status().requests == requests + 1  # the head answered 304
        # A kill of a flag on everywhere: the head names it, every tenant reads false.
        flag = repo / "flags" / "always_on.yaml"
        flag.write_text(flag.read_text().replace('state: "on"', 'state: "off"'))
        compile_to(repo, dist)
        publish(flagops, repo, dist, s3_bucket)
        assert c.refresh() is True
        assert c.status().off == ("always_on",)
        assert not any(c.is_enabled("always_on", s, default=True) for s in SLUGS)
        assert {s: c.flags(s) for s in SLUGS} == {s: bundle(dist, s) for s in SLUGS}


def test_wrong_credentials_are_an_error_not_a_missing_document(s3_server, s3_bucket, s3_env, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with FlagClient(f"s3://{s3_bucket}/{PREFIX}", ENV, refresh_interval=None) as c:
        assert c.is_enabled("always_on", "acme") is False
        assert "403" in c.status().last_error


def test_s3_without_the_extra_fails_at_construction_naming_it():
    code = ("import sys; sys.modules['botocore'] = None\n"
            "from flagops_client import FlagClient\n"
            "try:\n    FlagClient('s3://bucket/flags', 'production')\n"
            "except ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert 'pip install "flagops-client[s3]"' in out.stdout, out.stderr
