"""Both object stores keep the same promises: whole-object writes, ETags, conditional writes, listing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from flagops.errors import UsageError
from flagops.storage import (FileStore, PreconditionFailed, Retry, S3Store, StorageError, TransientError,
                             open_target, retrying)


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    if request.param == "file":
        return FileStore(tmp_path / "store")
    request.getfixturevalue("s3_env")
    bucket = request.getfixturevalue("s3_bucket")
    return S3Store(str(bucket))


def test_put_get_head_list_delete(store):
    etag = store.put("p/env/tenants/a.json", b'{"a":1}\n')
    assert store.get("p/env/tenants/a.json") == (b'{"a":1}\n', etag)
    assert store.head("p/env/tenants/a.json") == etag
    assert store.get("p/env/tenants/missing.json") is None
    assert store.head("p/env/tenants/missing.json") is None
    store.put("p/env/tenants/b.json", b"{}\n")
    store.put("p/env/manifest.json", b"{}\n")
    listed = {o.key: o for o in store.list("p/env/tenants/")}
    assert sorted(listed) == ["p/env/tenants/a.json", "p/env/tenants/b.json"]
    assert listed["p/env/tenants/a.json"].etag == etag and listed["p/env/tenants/a.json"].size == 8
    store.delete("p/env/tenants/a.json")
    store.delete("p/env/tenants/a.json")  # deleting a missing key is fine
    assert [o.key for o in store.list("p/env/tenants/")] == ["p/env/tenants/b.json"]


def test_etag_changes_with_content(store):
    one = store.put("k.json", b"1")
    two = store.put("k.json", b"2")
    assert one != two and store.head("k.json") == two


def test_if_none_match_creates_only_once(store):
    store.put("m.json", b"first", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        store.put("m.json", b"second", if_none_match=True)
    assert store.get("m.json")[0] == b"first"


def test_if_match_needs_the_current_etag(store):
    old = store.put("m.json", b"one")
    new = store.put("m.json", b"two", if_match=old)
    with pytest.raises(PreconditionFailed):
        store.put("m.json", b"three", if_match=old)
    assert store.get("m.json") == (b"two", new)


def test_concurrent_conditional_writers_exactly_one_wins(store):
    base = store.put("m.json", b"base")
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.put("m.json", f"writer {i}".encode(), if_match=base)
            outcomes.append(f"won {i}")
        except PreconditionFailed:
            outcomes.append("lost")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1 and outcomes.count("lost") == 5
    assert store.get("m.json")[0] == f"writer {winners[0].split()[1]}".encode()


def test_s3_objects_carry_content_type_and_cache_control(s3_env, s3_bucket):
    S3Store(str(s3_bucket)).put("x.json", b"{}", cache_control="max-age=30")
    head = s3_bucket.client.head_object(Bucket=s3_bucket, Key="x.json")
    assert head["ContentType"] == "application/json" and head["CacheControl"] == "max-age=30"


def test_s3_wrong_credentials_are_a_clear_error(s3_env, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(StorageError, match="access denied"):
        S3Store(str(s3_bucket)).put("x.json", b"{}")


def test_s3_unreachable_endpoint_is_transient_then_gives_up(s3_env):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    st = S3Store("b", endpoint_url=f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(TransientError):
        st.get("x")
    with pytest.raises(StorageError, match="gave up after 2 attempts"):
        retrying(lambda: st.get("x"), Retry(attempts=2, base_delay=0.01))


def test_file_store_writes_are_atomic_and_hide_temporaries(tmp_path):
    st = FileStore(tmp_path / "s")
    st.put("a/b.json", b"x" * 100)
    (tmp_path / "s" / "a" / ".b.json.tmp-123").write_bytes(b"half")
    assert [o.key for o in st.list("a/")] == ["a/b.json"]
    assert not [p for p in (tmp_path / "s" / "a").iterdir() if ".tmp-" in p.name and p.name != ".b.json.tmp-123"]
    with pytest.raises(UsageError):
        st.put("../escape.json", b"x")


def test_retrying_backs_off_then_succeeds():
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("503 SlowDown")
        return "ok"

    retries: list[int] = []
    assert retrying(flaky, Retry(attempts=5, base_delay=0.001), on_retry=lambda n, e: retries.append(n)) == "ok"
    assert len(calls) == 3 and retries == [1, 2]


def test_retrying_does_not_retry_permanent_errors():
    calls = []

    def denied() -> None:
        calls.append(1)
        raise StorageError("access denied")

    with pytest.raises(StorageError):
        retrying(denied, Retry(attempts=5, base_delay=0.001))
    assert len(calls) == 1


def test_open_target(tmp_path):
    store, prefix = open_target("s3://bucket/some/prefix/")
    assert isinstance(store, S3Store) and store.bucket == "bucket" and prefix == "some/prefix"
    store, prefix = open_target(f"file://{tmp_path}/pub")
    assert isinstance(store, FileStore) and store.root == Path(f"{tmp_path}/pub") and prefix == ""
    for bad in ("s3:///x", "file://relative/dir", "http://example/x", "dist"):
        with pytest.raises(UsageError):
            open_target(bad)


def test_the_etag_of_a_single_part_upload_is_the_md5_of_its_bytes(store):
    """The publish delta compares a listing's ETags with local MD5s: both stores must keep this."""
    from flagops.storage import etag_of

    data = b'{"environment":"production","flags":{"a":true}}\n'
    assert store.put("p/e/tenants/x.json", data) == etag_of(data)
    assert [o.etag for o in store.list("p/e/tenants/")] == [etag_of(data)]


def test_age_is_measured_by_the_store_clock(store):
    assert store.age("p/missing.json") is None
    store.put("p/lock.json", b"{}")
    assert 0 <= store.age("p/lock.json") < 30
