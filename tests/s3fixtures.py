"""Fixtures for the real local S3 server: `s3_server` (session: endpoint_url, access_key, secret_key, region, env()),
`s3_client` (boto3 client), `s3_bucket` (fresh empty bucket per test: a str name with `.client`); loaded by conftest.

The server is the one `make s3-up` started (state in .s3/) when it is running, else one started
for this session and stopped after it. Without a server the tests that need it skip locally and
FAIL when ``CI`` is set, so CI can never pass without exercising the real store.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import s3server  # noqa: E402  (scripts/ is not a package)

ServerState = s3server.ServerState


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the local S3 server is required in CI: {reason}", pytrace=False)
    pytest.skip(f"local S3 server unavailable ({reason}); run `make s3-up`")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerState]:
    """The running SeaweedFS S3 server (reused from .s3/ or started for this session)."""
    state = s3server.running(s3server.DEFAULT_STATE_DIR)
    if state:
        yield state
        return
    own_dir = tmp_path_factory.mktemp("s3server")
    try:
        state, _ = s3server.start(own_dir)
    except (OSError, RuntimeError, TimeoutError) as exc:
        _unavailable(str(exc))
        return
    try:
        yield state
    finally:
        s3server.stop(own_dir)


def make_client(state: ServerState, **config: Any) -> Any:
    """A boto3 S3 client for the server (path-style addressing, short retries)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=state.endpoint_url, aws_access_key_id=state.access_key,
                        aws_secret_access_key=state.secret_key, region_name=state.region,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 2, "mode": "standard"}, **config))


@pytest.fixture(scope="session")
def s3_client(s3_server: ServerState) -> Any:
    return make_client(s3_server)


class Bucket(str):
    """A bucket name that also carries the client that created it."""

    client: Any


def empty_bucket(client: Any, name: str) -> None:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})


@pytest.fixture
def s3_bucket(s3_client: Any) -> Iterator[Bucket]:
    """A fresh empty bucket for one test, removed (with its objects) afterwards."""
    name = Bucket(f"t-{uuid.uuid4().hex[:20]}")
    name.client = s3_client
    s3_client.create_bucket(Bucket=name)
    yield name
    try:
        empty_bucket(s3_client, name)
        s3_client.delete_bucket(Bucket=name)
    except Exception:  # the server may have been stopped by a fault-injection test
        pass


@pytest.fixture
def s3_env(s3_server: ServerState, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the standard AWS credential chain and AWS_ENDPOINT_URL at the server for one test."""
    env = s3_server.env()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    return env
