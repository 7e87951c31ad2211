"""The local S3 server really is S3: it checks signatures and honours conditional writes."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import s3server
from s3fixtures import make_client

ROOT = Path(__file__).resolve().parent.parent


def _code(exc: ClientError) -> int:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"]


def test_healthz_and_state_file(s3_server):
    assert s3server.healthy(s3_server.endpoint_url)
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    assert s3server._pid_is_weed(s3_server.pid)


def test_if_none_match_star_creates_once(s3_bucket):
    c = s3_bucket.client
    c.put_object(Bucket=s3_bucket, Key="m.json", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as info:
        c.put_object(Bucket=s3_bucket, Key="m.json", Body=b"second", IfNoneMatch="*")
    assert _code(info.value) == 412
    assert c.get_object(Bucket=s3_bucket, Key="m.json")["Body"].read() == b"first"


def test_if_match_requires_current_etag(s3_bucket):
    c = s3_bucket.client
    first = c.put_object(Bucket=s3_bucket, Key="m.json", Body=b"one")["ETag"]
    second = c.put_object(Bucket=s3_bucket, Key="m.json", Body=b"two", IfMatch=first)["ETag"]
    # The ETag read before "two" is stale now: a writer holding it loses.
    with pytest.raises(ClientError) as info:
        c.put_object(Bucket=s3_bucket, Key="m.json", Body=b"three", IfMatch=first)
    assert _code(info.value) == 412
    assert c.get_object(Bucket=s3_bucket, Key="m.json")["Body"].read() == b"two"
    assert c.head_object(Bucket=s3_bucket, Key="m.json")["ETag"] == second
    # If-Match on a missing key fails too (someone deleted it meanwhile).
    with pytest.raises(ClientError) as info:
        c.put_object(Bucket=s3_bucket, Key="absent.json", Body=b"x", IfMatch=first)
    assert _code(info.value) in (404, 412)


def test_wrong_secret_is_refused(s3_server, s3_bucket):
    bad = make_client(s3_server.__class__(**{**s3_server.__dict__, "secret_key": "wrong-secret"}))
    with pytest.raises(ClientError) as info:
        bad.put_object(Bucket=s3_bucket, Key="x", Body=b"x")
    assert _code(info.value) == 403


def test_anonymous_read_refused_without_policy(s3_server, s3_bucket):
    s3_bucket.client.put_object(Bucket=s3_bucket, Key="x.json", Body=b"{}")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{s3_server.endpoint_url}/{s3_bucket}/x.json", timeout=5)
    assert info.value.code == 403


def test_cli_status_and_env(s3_server):
    if s3server.running() is None:
        pytest.skip("this session's server is private; status reports the shared .s3/ one")
    status = subprocess.run([sys.executable, str(ROOT / "scripts" / "s3server.py"), "status"],
                            capture_output=True, text=True, timeout=30)
    assert status.returncode == 0 and s3_server.endpoint_url in status.stdout
    env = subprocess.run([sys.executable, str(ROOT / "scripts" / "s3server.py"), "env"],
                         capture_output=True, text=True, timeout=30)
    assert f"export AWS_ENDPOINT_URL={s3_server.endpoint_url}" in env.stdout


def test_two_servers_side_by_side_start_and_stop(tmp_path, s3_server):
    """A private server next to the shared one: its own ports and data, stopped by PID."""
    state, started = s3server.start(tmp_path / "s3")
    try:
        assert started
        assert state.endpoint_url != s3_server.endpoint_url
        assert not set(state.ports.values()) & set(s3_server.ports.values())
        client = make_client(state)
        with pytest.raises(ClientError) as info:  # no bucket is created behind a mistyped name
            client.put_object(Bucket="never-created", Key="x", Body=b"x")
        assert info.value.response["Error"]["Code"] == "NoSuchBucket"
        again, started_again = s3server.start(tmp_path / "s3")
        assert (again.pid, started_again) == (state.pid, False)
        saved = json.loads((tmp_path / "s3" / "state.json").read_text())
        assert saved["pid"] == state.pid
    finally:
        assert s3server.stop(tmp_path / "s3")
    assert not s3server._pid_is_weed(state.pid) or s3server._zombie(state.pid)
    assert not s3server.healthy(state.endpoint_url)
    assert not (tmp_path / "s3" / "state.json").exists()
