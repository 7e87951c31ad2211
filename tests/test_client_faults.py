"""A client that can't be stalled or blown up: a wall-clock deadline on every request against a
real trickling server, one hostile bundle contained to its tenant, and bounded memory under
many concurrent oversized first loads."""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from typing import Callable, Iterator

import pytest

from flagops_client import FlagClient
from flagops_client import transport
from flagops_client.testing import BundleServer, write_head
from test_client import ENV, SLUGS, bundle, client, compile_to, dist, server, write_flags  # noqa: F401

SLACK = 0.6  # scheduling on a shared machine; the trickle itself would take minutes


class RawServer:
    """A TCP server on 127.0.0.1 whose handler writes whatever ``respond(wfile)`` writes."""

    def __init__(self, respond: Callable[..., None]) -> None:
        stop = self.stop_event = threading.Event()

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # the request head
                try:
                    respond(self.wfile, stop)
                except OSError:  # the client gave up: expected
                    pass

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.stop_event.set()
        self._server.shutdown()
        self._server.server_close()


def trickle(data: bytes, per_byte: float = 0.5) -> Callable[..., None]:
    def respond(wfile, stop: threading.Event) -> None:
        for i in range(len(data)):
            if stop.wait(per_byte):
                return
            wfile.write(data[i:i + 1])
            wfile.flush()
    return respond


BODY = b'{"environment":"production","flags":{"always_on":true},"schemaVersion":1,"tenant":"acme"}\n'
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)


@pytest.fixture
def raw() -> Iterator[Callable[[Callable[..., None]], RawServer]]:
    made: list[RawServer] = []

    def make(respond: Callable[..., None]) -> RawServer:
        made.append(RawServer(respond))
        return made[-1]
    yield make
    for srv in made:
        srv.close()


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_trickling_server_never_holds_a_read_or_refresh_past_the_timeout(raw, where):
    if where == "headers":
        srv = raw(trickle(HEADERS + BODY))
    else:
        def respond(wfile, stop):
            wfile.write(HEADERS)
            wfile.flush()
            trickle(BODY)(wfile, stop)
        srv = raw(respond)
    with FlagClient(srv.url, ENV, timeout=1.0, refresh_interval=None) as c:
        started = time.monotonic()
        assert c.is_enabled("always_on", "acme", default=False) is False
        assert time.monotonic() - started < 1.0 + SLACK
        started = time.monotonic()
        assert c.refresh() is False
        assert time.monotonic() - started < 1.0 + SLACK
        assert "timed out" in c.status().last_error


def test_a_trickling_snapshot_is_bounded_too(raw):
    srv = raw(trickle(HEADERS + BODY, per_byte=0.2))
    with FlagClient(srv.url, ENV, all_tenants=True, timeout=1.0, refresh_interval=None) as c:
        started = time.monotonic()
        assert c.is_enabled("always_on", "acme") is False
        assert time.monotonic() - started < 1.0 + SLACK


@pytest.mark.parametrize("headed", [False, True], ids=["no head", "head"])
def test_one_hostile_bundle_never_affects_another_tenants_refresh(tmp_path, dist, server, caplog, headed):
    hostile = f"/{ENV}/tenants/globex.json"
    with caplog.at_level(logging.DEBUG, logger="flagops_client"), client(server.url) as c:
        for s in SLUGS:
            c.is_enabled("new_billing", s)
        before_globex = c.flags("globex")
        server.replace[hostile] = b"[" * 100_000
        write_flags(tmp_path / "repo", billing_pct=100)
        compile_to(tmp_path / "repo", dist)
        if headed:
            write_head(dist, ENV, sequence=2)
        for _ in range(3):
            assert c.refresh() is False  # never raises
        assert c.flags("globex") == before_globex
        others = [s for s in SLUGS if s != "globex"]
        assert {s: c.flags(s) for s in others} == {s: bundle(dist, s) for s in others}
        assert "globex.json" in c.status().last_error and "nested" in c.status().last_error
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "globex" in r.getMessage()]
    assert len(warnings) == 1  # one per failure streak
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.WARNING)


def test_a_hostile_bundle_is_retried_once_per_interval_not_in_a_loop(tmp_path, dist, server):
    write_head(dist, ENV, sequence=1)
    with client(server.url, refresh_interval=0.2) as c:
        for s in SLUGS:
            c.is_enabled("always_on", s)
        server.replace[f"/{ENV}/tenants/globex.json"] = b"[" * 100_000
        write_head(dist, ENV, sequence=2, snapshot=None)
        time.sleep(0.3)
        server.reset_counts()
        time.sleep(1.0)
        assert server.count(suffix="globex.json") <= 8 and server.count(suffix="head.json") <= 8


def test_concurrent_oversized_first_loads_stay_bounded(raw, monkeypatch):
    """40 first loads at once, each body endless and without a Content-Length."""
    def endless(wfile, stop):
        wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        chunk = b" " * 65536
        while not stop.is_set():
            wfile.write(chunk)

    srv = raw(endless)
    monkeypatch.setattr(transport.BUFFERED, "peak", 0)
    tenants = [f"tenant-{i:02d}" for i in range(40)]
    with FlagClient(srv.url, ENV, timeout=10.0, refresh_interval=None, max_tenants=100) as c:
        threads = [threading.Thread(target=c.is_enabled, args=("always_on", t)) for t in tenants]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert "larger than" in c.status().last_error
    limit = 40 * (transport.MAX_BUNDLE + 65536)
    assert 0 < transport.BUFFERED.peak <= limit and transport.BUFFERED.current == 0


def test_an_announced_oversized_body_is_refused_before_reading(dist, server, monkeypatch):
    server.replace[f"/{ENV}/tenants/acme.json"] = b" " * (transport.MAX_BUNDLE + 1)
    monkeypatch.setattr(transport.BUFFERED, "peak", 0)
    with client(server.url) as c:
        assert c.is_enabled("always_on", "acme") is False
        assert "larger than" in c.status().last_error and transport.BUFFERED.peak == 0


def test_the_total_in_flight_is_capped_across_requests(dist, server, monkeypatch):
    """Over the process-wide budget a load fails fast (and retries later) instead of buffering."""
    monkeypatch.setattr(transport, "BUFFERED", transport._Budget(10))
    with client(server.url) as c:
        assert c.is_enabled("always_on", "acme") is False
        assert "in flight" in c.status().last_error
