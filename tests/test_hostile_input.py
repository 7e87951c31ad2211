"""Hostile input is a located problem with exit 1, never a crash (exit 3) or a hang.

Deep nesting, integers too long to convert, lone surrogates, FIFOs, devices, symlinks out of
the repository, and inventory URLs that trickle or never end; each through the real readers,
the real CLI and, for URLs, a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from flagops.errors import SourceError
from flagops.loading import MAX_DEPTH, FsSource, Project, load_flags, parse_flag_blob, parse_json, parse_yaml
from flagops.tenantsource import read_tenants_source

INVENTORY = "- id: t_1\n  slug: acme\n  plan: free\n"
FLAG = "key: {key}\ndescription: {description}\nstate: {state}\n"


def rules(problems: list[Any]) -> list[tuple[int, int, str]]:
    return [(p.line, p.col, p.rule) for p in problems]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "flags").mkdir(parents=True)
    (root / "tenants").mkdir()
    (root / "tenants" / "production.yaml").write_text(INVENTORY)
    return root


def flag(root: Path, key: str, text: str) -> None:
    (root / "flags" / f"{key}.yaml").write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- nesting


@pytest.mark.parametrize("fast", [False, True])
def test_deep_flow_nesting_is_located(fast: bool) -> None:
    text = "key: deep\nowner: " + "[" * 900 + "]" * 900 + "\n"
    doc, problems = parse_yaml("flags/deep.yaml", text.encode(), fast=fast)
    assert rules(problems) == [(2, 8 + MAX_DEPTH - 1, "too-deep")]


def test_deep_block_nesting_is_located() -> None:
    text = "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "leaf\n"
    doc, problems = parse_yaml("flags/deep.yaml", text.encode())
    assert doc is None and rules(problems) == [(MAX_DEPTH + 1, 1 + 2 * MAX_DEPTH, "too-deep")]


def test_json_nested_100000_deep_is_located() -> None:
    text = "[" * 100_000 + "]" * 100_000
    doc, problems = parse_json("export.json", text.encode())
    assert doc is None and rules(problems) == [(1, MAX_DEPTH + 1, "too-deep")]
    within = "[" * 900 + "]" * 900  # under the decoder's own limit, over ours
    assert rules(parse_json("export.json", within.encode())[1]) == [(1, MAX_DEPTH + 1, "too-deep")]


def test_nesting_up_to_the_limit_is_read() -> None:
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    for doc, problems in (parse_json("a.json", text.encode()), parse_yaml("a.yaml", text.encode())):
        assert problems == [] and doc is not None


def test_an_old_blob_that_no_longer_parses_is_reported_not_raised() -> None:
    data, problems = parse_flag_blob("flags/x.yaml", b"key: x\nscope:\n  plans: " + b"[" * 900 + b"]" * 900)
    assert data is None and [p.rule for p in problems] == ["too-deep"]
    data, problems = parse_flag_blob("flags/x.yaml", b"- a list\n")
    assert data is None and [p.rule for p in problems] == ["not-a-mapping"]
    data, problems = parse_flag_blob("flags/x.yaml", FLAG.format(key="x", description="d", state="on").encode())
    assert data == {"key": "x", "description": "d", "state": "on"} and problems == []


# --------------------------------------------------------------------------- numbers and strings


def test_a_5000_digit_integer_is_located() -> None:
    text = '[{"id": "a", "slug": "a", "plan": "free", "name": ' + "7" * 5000 + "}]"
    doc, problems = parse_json("export.json", text.encode())
    assert doc is None and rules(problems) == [(1, 51, "number-too-large")]
    doc, problems = parse_yaml("flags/x.yaml", b"key: x\npct: " + b"7" * 5000 + b"\n")
    assert rules(problems) == [(2, 6, "number-too-large")]


def test_lone_surrogates_are_located_and_never_reach_an_encoder() -> None:
    doc, problems = parse_yaml("flags/x.yaml", b'key: x\ndescription: "bad \\ud800 x"\n')
    assert rules(problems) == [(2, 14, "unencodable-string")]
    assert doc is not None
    json.dumps(doc.data, ensure_ascii=False).encode("utf-8")  # what show/compile would do
    doc, problems = parse_json("export.json", b'[{"id": "t\\udfff", "slug": "a", "plan": "free"}]')
    assert rules(problems) == [(1, 9, "unencodable-string")]
    doc, problems = parse_yaml("flags/x.yaml", b'key: x\n"k\\ud800": 1\n')
    assert rules(problems) == [(2, 1, "unencodable-string")]
    # A valid pair written as two escapes is one character in JSON, and fine.
    assert parse_json("export.json", b'["\\ud83d\\ude00"]')[1] == []


@pytest.mark.parametrize("written", ["5.0", "1e2", "012", "1_0"])
def test_pct_is_an_integer_as_written(root: Path, flagops, written: str) -> None:  # type: ignore[no-untyped-def]
    flag(root, "roll", FLAG.format(key="roll", description="d", state="rollout") + f"pct: {written}\n")
    run = flagops("validate", root=root)
    assert run.code == 1
    assert run.out.startswith("flags/roll.yaml:4:6: error: pct must be an integer"), run.out


@pytest.mark.parametrize("case", ["deep", "surrogate", "number", "surrogate-tenant"])
@pytest.mark.parametrize("command", [("validate",), ("compile", "--out", "{tmp}/dist"), ("show", "bad", "--format", "json")])
def test_hostile_files_exit_1_from_every_command(root: Path, flagops, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                 case: str, command: tuple[str, ...]) -> None:
    if case == "deep":
        flag(root, "bad", FLAG.format(key="bad", description="d", state="targeted")
             + "scope:\n  plans: " + "[" * 500 + "]" * 500 + "\n")
    elif case == "surrogate":
        flag(root, "bad", FLAG.format(key="bad", description='"bad \\ud800 x"', state="on"))
    elif case == "number":
        flag(root, "bad", FLAG.format(key="bad", description="d", state="rollout") + "pct: " + "9" * 5000 + "\n")
    else:
        flag(root, "bad", FLAG.format(key="bad", description="d", state="on"))
        (root / "tenants" / "production.yaml").unlink()
        (root / "tenants" / "production.json").write_text('[{"id": "t\\ud800", "slug": "a", "plan": "free"}]')
    run = flagops(*(a.format(tmp=tmp_path) for a in command), root=root)
    assert run.code in (0, 1), run.err  # show may print a refused value; nothing may crash
    if command[0] != "show":
        assert run.code == 1 and run.err.count("error") >= 1


# --------------------------------------------------------------------------- files


def _loaded(root: Path) -> Project:
    project = Project(FsSource(root))
    load_flags(FsSource(root), project)
    return project


def test_a_fifo_is_refused_without_blocking(root: Path, flagops) -> None:  # type: ignore[no-untyped-def]
    os.mkfifo(root / "flags" / "pipe.yaml")
    os.mkfifo(root / "tenants" / "staging.yaml")
    run = flagops("validate", root=root)  # opening a FIFO for reading would block forever
    assert run.code == 1
    assert "flags/pipe.yaml:1:1: error: the file is a FIFO; only regular files are read (not-a-regular-file)" in run.out
    assert "tenants/staging.yaml:1:1: error: the file is a FIFO" in run.out


def test_devices_and_symlinks_out_of_the_repository_are_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.yaml"
    outside.write_text(FLAG.format(key="stolen", description="d", state="on"))
    (root / "flags" / "stolen.yaml").symlink_to(outside)
    (root / "flags" / "zero.yaml").symlink_to("/dev/zero")
    (root / "flags" / "passwd.yaml").symlink_to("/etc/passwd")
    (root / "flags" / "shared").mkdir()
    (root / "flags" / "shared" / "real.yaml").write_text(FLAG.format(key="inside", description="d", state="on"))
    (root / "flags" / "inside.yaml").symlink_to(root / "flags" / "shared" / "real.yaml")
    project = _loaded(root)
    by_path = {p.path: p.rule for p in project.problems}
    assert by_path["flags/stolen.yaml"] == "outside-repository"
    assert by_path["flags/passwd.yaml"] == "outside-repository"
    assert by_path["flags/zero.yaml"] == "outside-repository"
    assert "stolen" not in project.flags and "passwd" not in project.flags
    assert project.flags["inside"].data["key"] == "inside"  # a symlink inside the repository is fine


def test_a_device_inside_the_repository_is_refused_before_reading(root: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    os.mknod(root / "flags" / "zero.yaml", 0o600 | 0o020000, os.makedev(1, 5))  # /dev/zero's numbers
    (problem,) = _loaded(root).problems
    assert (problem.path, problem.rule) == ("flags/zero.yaml", "not-a-regular-file")
    assert "character device" in problem.message


def test_size_limits_hold_before_reading(root: Path) -> None:
    with open(root / "flags" / "huge.yaml", "wb") as fh:
        fh.truncate(10 * 1024 * 1024 * 1024)  # 10 GiB, sparse: reading it would exhaust memory
    (problem,) = _loaded(root).problems
    assert (problem.rule, problem.message) == ("file-too-large",
                                               "the file is 10737418240 bytes; it must stay under 1048576 bytes")


def test_tenants_file_must_be_regular(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "export.yaml")
    with pytest.raises(SourceError, match="is a FIFO"):
        read_tenants_source("export.yaml", cwd=tmp_path)
    with pytest.raises(SourceError, match="character device"):
        read_tenants_source("/dev/zero")


def test_tenants_fifo_from_the_cli_exits_1(root: Path, flagops, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    os.mkfifo(tmp_path / "export.yaml")
    run = flagops("validate", "--env", "production", "--tenants", str(tmp_path / "export.yaml"), root=root)
    assert run.code == 1 and "is a FIFO" in run.err


# --------------------------------------------------------------------------- URLs


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Serves /trickle-body, /trickle-headers, /endless and /ok."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        try:
            if self.path == "/trickle-headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for _ in range(200):
                    self.wfile.write(b"X")
                    self.wfile.flush()
                    time.sleep(0.5)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if self.path == "/ok":
                body = json.dumps([{"id": "t_9", "slug": "from-url", "plan": "free"}]).encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.end_headers()
            if self.path == "/endless":
                chunk = b" " * 65536
                while True:
                    self.wfile.write(chunk)
            for byte in b'[{"id": "t_1", "slug": "slow", "plan": "free"}]' * 100:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _timed(call: Callable[[], Any]) -> float:
    start = time.monotonic()
    with pytest.raises(SourceError) as caught:
        call()
    assert "no complete answer within 0.8s" in str(caught.value)
    return time.monotonic() - start


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-headers"])
def test_a_trickling_server_is_cut_off_at_the_deadline(hostile_server: str, path: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGOPS_TENANTS_TIMEOUT", "0.8")
    # Each byte comes well within any per-read timeout; only a wall-clock deadline stops it.
    assert _timed(lambda: read_tenants_source(hostile_server + path)) < 2.5


def test_a_trickling_server_from_the_cli_exits_1(hostile_server: str, root: Path, flagops,  # type: ignore[no-untyped-def]
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGOPS_TENANTS_TIMEOUT", "0.8")
    start = time.monotonic()
    run = flagops("validate", "--env", "production", "--tenants", hostile_server + "/trickle-body", root=root)
    assert run.code == 1 and "no complete answer within 0.8s" in run.err
    assert time.monotonic() - start < 2.5


def test_an_endless_response_stops_at_the_size_cap(hostile_server: str) -> None:
    with pytest.raises(SourceError, match="1048576 bytes or more"):
        read_tenants_source(hostile_server + "/endless", timeout=30, limit=1024 * 1024)


def test_a_good_url_still_reads(hostile_server: str) -> None:
    display, raw = read_tenants_source(hostile_server + "/ok", timeout=5)
    assert json.loads(raw)[0]["slug"] == "from-url"


@pytest.mark.parametrize("value", ["abc", "0", "-1", "inf", "nan"])
def test_a_bad_timeout_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGOPS_TENANTS_TIMEOUT", value)
    with pytest.raises(SourceError, match="FLAGOPS_TENANTS_TIMEOUT"):
        read_tenants_source("http://127.0.0.1:9/never-asked")
