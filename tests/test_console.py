"""flagops ui in a real headless Chromium, over a real clone with a real (bare) remote.

One console server (uvicorn, in a thread, on a free port) and one browser serve the whole
module; each test opens its own browser context. The clone's history is backdated and has
several authors; proposals are pushed to a bare repository made here, under a GitHub-style
URL (``pushInsteadOf``) so the compare link is checked too. Chromium is Debian's
(/usr/bin/chromium), driven by Playwright; screenshots go to test-artifacts/.

The browser tests share the clone and run in file order, like one operator's session: the
proposal at the end carries the edits the tests before it saved.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import uvicorn
from playwright.sync_api import expect
from starlette.testclient import TestClient

from flagops.console.app import create_app
from flagops.console.security import check_bind_host
from flagops.errors import UsageError
from flagops_client.evaluation import evaluate
from testkit import GIT_ISOLATION, GitRepo, chromium, commit_files, git_env, run_git, screenshot

NOW = dt.datetime.now(dt.timezone.utc)
GITHUB_URL = "https://github.com/dezky/flags.git"

TENANTS = {
    "production": [
        {"id": "t_acme", "slug": "acme", "plan": "enterprise"},
        {"id": "t_beta", "slug": "beta-gmbh", "plan": "business", "partnerSlug": "nordcloud"},
        {"id": "t_gamma", "slug": "gamma-oy", "plan": "business"},
        {"id": "t_delta", "slug": "delta-kg", "plan": "starter"},
        {"id": "t_eps", "slug": "epsilon", "plan": "free"},
        {"id": "t_zeta", "slug": "zeta-ab", "plan": "business"},
        {"id": "t_eta", "slug": "eta-sa", "plan": "starter"},
        {"id": "t_theta", "slug": "theta-bv", "plan": "free"},
    ],
    "staging": [
        {"id": "s_acme", "slug": "acme", "plan": "enterprise"},
        {"id": "s_beta", "slug": "beta-gmbh", "plan": "business"},
        {"id": "s_delta", "slug": "delta-kg", "plan": "starter"},
    ],
}
PAST = (NOW.date() - dt.timedelta(days=10)).isoformat()
SOON = (NOW.date() + dt.timedelta(days=12)).isoformat()
CHAT = ("# Team chat, rolled out slowly: support watches the error rate.\n"
        "key: chat_beta\ndescription: Team chat in the sidebar\nowner: chat-team@example.eu\n"
        "state: rollout\npct: 20  # raise in steps of 20\n")
FLAGS = {
    "chat_beta": CHAT,
    "old_switch": "key: old_switch\ndescription: Legacy upload path switch\nowner: files@example.eu\nstate: on\n",
    "billing_v3": ("key: billing_v3\ndescription: Billing v3 with SEPA mandates\nowner: billing@example.eu\n"
                   "state: targeted\nscope:\n  tenantSlugs: [acme]\n"),
    "export_zip": (f"key: export_zip\ndescription: Zipped GDPR export\nowner: platform@example.eu\n"
                   f"expires: {PAST}\nstate: targeted\nscope:\n  plans: [business]\n"),
    "search_v2": (f"key: search_v2\ndescription: New search index\nowner: search@example.eu\n"
                  f"expires: {SOON}\nstate: off\n"),
    "legacy_pop3": "key: legacy_pop3\ndescription: POP3 access\nowner: mail@example.eu\nstate: on\n",
}


def _yaml_tenants(tenants: list[dict[str, str]]) -> str:
    return "".join("- {" + ", ".join(f"{k}: {v}" for k, v in t.items()) + "}\n" for t in tenants)


def _author(name: str) -> tuple[str, str]:
    return name, name.split()[0].lower() + "@example.eu"


def _git(root: Path, *args: str) -> str:
    return run_git(root, *args, author=_author("Olga Operator"))


def make_clone(base: Path, *, remote: bool = True) -> tuple[Path, Path]:
    """A clone with backdated history by three authors, and its bare remote."""
    bare = base / "remote.git"
    root = base / "clone"
    repo = GitRepo(root, user=False)
    _git(root, "config", "user.name", "Olga Operator")  # who proposes
    _git(root, "config", "user.email", "olga@example.eu")
    commit_files(root, {"tenants/production.yaml": _yaml_tenants(TENANTS["production"]),
                        "tenants/staging.yaml": _yaml_tenants(TENANTS["staging"]),
                        **{f"flags/{k}.yaml": v for k, v in FLAGS.items()}},
                 "Add the first flags", author=_author("Alice Admin"), date=120)
    commit_files(root, {"flags/chat_beta.yaml": CHAT.replace("pct: 20", "pct: 40")},
                 "Raise chat_beta to 40%", author=_author("Bob Builder"), date=20)
    commit_files(root, {"flags/retired_banner.yaml": "key: retired_banner\ndescription: Maintenance banner\n"
                                                     "owner: web@example.eu\nstate: on\n"},
                 "Add the maintenance banner", author=_author("Carol Chen"), date=15)
    repo.remove("flags/retired_banner.yaml")
    repo.commit("Remove the maintenance banner", author=_author("Carol Chen"), date=3)
    if remote:
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True, env=git_env())
        _git(root, "remote", "add", "origin", GITHUB_URL)
        # Pushes to the GitHub address land in the bare repository made here.
        _git(root, "config", f"url.{bare.as_uri()}.pushInsteadOf", GITHUB_URL)
        _git(root, "push", "-q", "-u", "origin", "main")
    return root, bare


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Server:
    """The console on a free loopback port, in this process."""

    def __init__(self, root: Path):
        self.root = root
        self.sock = _free_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(root)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the console did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_clone(tmp_path_factory.mktemp("console"))


@pytest.fixture(scope="module", autouse=True)
def isolated_git() -> Iterator[None]:
    """The console runs git in this process: no configuration of the machine (signing, hooks)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in GIT_ISOLATION.items():
            mp.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def console(clone: tuple[Path, Path]) -> Iterator[Server]:
    with Server(clone[0]) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def shared_page(browser: Any, console: Server) -> Iterator[Any]:
    """One browser context and tab for the module's page tests: each starts with a fresh goto."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=console.url)
    context.set_default_timeout(5000)
    pg = context.new_page()
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.requests = requests
    yield pg
    context.close()


@pytest.fixture
def page(shared_page: Any, console: Server) -> Iterator[Any]:
    shared_page.requests.clear()
    yield shared_page
    assert all(url.startswith(console.url) for url in shared_page.requests), shared_page.requests  # nothing leaves


def _shot(page: Any, name: str) -> None:
    screenshot(page, f"console-{name}")


def _until(page: Any, done: Any, timeout: float = 5.0) -> None:
    """Let the page run until ``done()`` (a Python-side event such as a dialog) is true."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        page.wait_for_timeout(20)


def _reach(flag: dict[str, Any], env: str) -> str:
    tenants = TENANTS[env]
    return f"{sum(evaluate(flag, t, env) for t in tenants)} of {len(tenants)}"


def _flag(root: Path, key: str) -> str:
    return (root / "flags" / f"{key}.yaml").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- list, search, palette


def test_list_shows_every_flag_with_exact_reach(page: Any, clone: tuple[Path, Path]) -> None:
    page.goto("/")
    for key in FLAGS:
        expect(page.get_by_test_id(f"flag-row-{key}")).to_be_visible()
    expect(page.get_by_test_id("flag-row-retired_banner")).to_have_count(0)  # deleted: only when searched
    chat = page.get_by_test_id("flag-row-chat_beta")
    chat_def = {"key": "chat_beta", "state": "rollout", "pct": 40}
    assert chat.locator("td.num").all_inner_texts() == [_reach(chat_def, "staging"), _reach(chat_def, "production")]
    assert chat.locator(".badge.state-rollout").inner_text() == "rollout"
    assert chat.locator(".pct").inner_text() == "40%"
    assert "Bob Builder" in chat.locator("td.last").inner_text()
    assert "chat-team@example.eu" in chat.inner_text()
    billing = page.get_by_test_id("flag-row-billing_v3")
    assert "tenants: acme" in billing.locator("td.scope").inner_text()
    assert billing.locator("td.num").all_inner_texts() == ["1 of 3", "1 of 8"]
    old = page.get_by_test_id("flag-row-old_switch")
    assert old.locator(".badge.stale").count() == 1  # on for everyone, untouched for 120 days
    assert page.get_by_test_id("flag-row-export_zip").locator(".badge.expired").inner_text() == "expired"
    assert SOON in page.get_by_test_id("flag-row-search_v2").locator(".badge.soon").inner_text()
    assert "~" not in page.locator("#flags").inner_text()
    _shot(page, "list")


def test_search_by_every_field_and_by_tenant(page: Any, clone: tuple[Path, Path]) -> None:
    root = clone[0]
    page.goto("/")
    search = page.get_by_test_id("search")

    def shown(query: str) -> list[str]:
        search.fill(query)
        page.wait_for_function("q => new URL(location.href).searchParams.get('q') === (q || null)",
                               arg=query, timeout=3000)
        return sorted(r.get_attribute("data-key") for r in page.locator("#flags tbody tr:visible").all())

    assert shown("billing") == ["billing_v3"]  # key
    assert shown("sidebar") == ["chat_beta"]  # description
    assert shown("platform@") == ["export_zip"]  # owner
    assert shown("rollout") == ["chat_beta"]  # state
    assert shown("business") == ["export_zip"]  # plan
    # A tenant: the flags on for it in any environment (whatever the rollout buckets say).
    beta = {env: next(t for t in TENANTS[env] if t["slug"] == "beta-gmbh") for env in TENANTS}
    on = sorted(k for k in FLAGS if any(evaluate(_definition(root, k), beta[env], env) for env in TENANTS))
    assert "billing_v3" not in on and "old_switch" in on
    assert shown("beta-gmbh") == on
    expect(page.locator("#tenant-banner")).to_contain_text("Tenant beta-gmbh")
    _shot(page, "search-tenant")
    assert shown("acme billing") == ["billing_v3"]
    assert shown("retired") == ["retired_banner"]  # deleted flags stay findable
    expect(page.get_by_test_id("flag-row-retired_banner")).to_contain_text("deleted")
    expect(page.get_by_test_id("flag-row-retired_banner")).to_contain_text("Maintenance banner")
    assert shown("nothing-like-this") == []
    expect(page.locator("#no-match")).to_be_visible()
    search.fill("")
    search.press("Escape")
    expect(page.locator("#flags tbody tr:visible")).to_have_count(len(FLAGS))


def _definition(root: Path, key: str) -> dict[str, Any]:
    from flagops.loading import parse_yaml

    doc, _ = parse_yaml(f"flags/{key}.yaml", (root / "flags" / f"{key}.yaml").read_bytes())
    return doc.data


def test_command_palette_jumps_to_a_flag(page: Any) -> None:
    page.goto("/")
    page.locator("h1").click()
    page.keyboard.press("Control+k")
    expect(page.locator("#palette")).to_be_visible()
    page.keyboard.type("expo")
    expect(page.locator("#palette-list li").first).to_contain_text("export_zip")
    page.keyboard.press("Enter")
    page.wait_for_url("**/flags/export_zip")
    page.locator("h1").click()
    page.keyboard.press("/")
    page.keyboard.type("retired")
    expect(page.locator("#palette-list li").first).to_contain_text("deleted")
    page.keyboard.press("Enter")
    page.wait_for_url("**/flags/retired_banner")
    # A deleted flag keeps its history: added, then removed.
    expect(page.get_by_test_id("history-entry")).to_have_count(2)
    assert "Remove the maintenance banner" in page.get_by_test_id("history-entry").first.inner_text()


# --------------------------------------------------------------------------- detail: edit and preview


def _plan_counts(root: Path) -> dict[str, dict[str, Any]]:
    from flagops.plan import make_plan

    plan = make_plan(root, "HEAD").to_dict()
    return {env: {f["key"]: f for f in p["flags"]} for env, p in plan["environments"].items()}


def test_edit_with_live_preview_diff_and_save(page: Any, clone: tuple[Path, Path]) -> None:
    root = clone[0]
    page.goto("/flags/chat_beta")
    history = page.get_by_test_id("history-entry")
    expect(history).to_have_count(2)
    first = history.first.inner_text()
    assert "Bob Builder" in first and "<bob@example.eu>" in first and "Raise chat_beta to 40%" in first
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", first)
    assert re.search(r"\b[0-9a-f]{12}\b", first) and "pct" in first and "20" in first and "40" in first

    prod = page.get_by_test_id("preview-production")
    expect(prod).to_contain_text(_reach({"key": "chat_beta", "state": "rollout", "pct": 40}, "production"))
    page.get_by_test_id("pct-input").fill("70")
    after = {"key": "chat_beta", "state": "rollout", "pct": 70}
    expect(prod).to_contain_text(f"→ {_reach(after, 'production')}")
    expect(page.locator("#dirty")).to_be_visible()
    assert page.locator("#pct-range").input_value() == "70"
    # A business-only scope, picked with the chips.
    plans = page.get_by_test_id("chip-plans")
    plans.fill("business")
    plans.press("Enter")
    after["scope"] = {"plans": ["business"]}
    expect(prod).to_contain_text(f"→ {_reach(after, 'production')}")
    expect(page.get_by_test_id("risk")).to_be_hidden()  # 40 -> 70 is 30 points
    page.locator("#diff-view summary").click()
    diff = page.locator("#diff")
    expect(diff).to_contain_text("+pct: 70  # raise in steps of 20")
    expect(diff).to_contain_text("-pct: 40")
    _shot(page, "edit-preview")
    if os.environ.get("FLAGOPS_DOCS_SCREENSHOT"):  # regenerates the README's picture
        page.set_viewport_size({"width": 1180, "height": 700})
        page.screenshot(path=str(Path(__file__).resolve().parent.parent / "docs" / "console.png"))
        page.set_viewport_size({"width": 1400, "height": 900})

    # Leaving with unsaved changes asks first.
    dialogs: list[str] = []
    page.once("dialog", lambda d: (dialogs.append(d.type), d.dismiss()))
    page.locator("nav.crumbs a").click(no_wait_after=True)
    _until(page, lambda: dialogs)
    assert dialogs == ["beforeunload"]
    expect(page.locator("#dirty")).to_be_visible()
    assert page.url.endswith("/flags/chat_beta")

    preview_text = prod.inner_text()
    page.get_by_test_id("save").click()
    expect(page.locator("#propose-result")).to_contain_text("Saved flags/chat_beta.yaml")
    text = _flag(root, "chat_beta")
    assert "pct: 70  # raise in steps of 20" in text and text.startswith("# Team chat")
    assert "plans: [business]" in text
    # The preview showed what flagops plan says about the saved change.
    planned = _plan_counts(root)["production"]["chat_beta"]
    assert f"{planned['enabledBefore']} of 8 → {planned['enabledAfter']} of 8" in preview_text
    assert f"+{len(planned['turnedOn'])} turn on" in preview_text or not planned["turnedOn"]
    expect(page.locator("#dirty")).to_be_hidden()


def test_invalid_edit_is_refused_and_writes_nothing(page: Any, clone: tuple[Path, Path]) -> None:
    root = clone[0]
    before = _flag(root, "search_v2")
    page.goto("/flags/search_v2")
    page.get_by_test_id("state-targeted").click()
    tenants = page.get_by_test_id("chip-tenantSlugs")
    tenants.fill("nobody-here")
    tenants.press("Enter")
    expect(page.locator("#preview-problems")).to_contain_text("unknown-tenant")
    page.get_by_test_id("save").click()
    expect(page.locator("#save-status")).to_contain_text("Not saved")
    assert _flag(root, "search_v2") == before
    # Completion from the inventories, then a valid save.
    page.locator(".chips[data-axis=tenantSlugs] .chip-x").click()
    tenants.fill("gam")
    expect(page.locator("#options-tenantSlugs option[value='gamma-oy']")).to_have_count(1)
    tenants.fill("gamma-oy")
    tenants.press("Enter")
    expect(page.get_by_test_id("preview-production")).to_contain_text("0 of 8 → 1 of 8")
    expect(page.get_by_test_id("preview-staging")).to_contain_text("0 of 3 tenants")
    # A partner chip (its tenants join), then taken back with Backspace; an environment chip.
    partners = page.get_by_test_id("chip-partnerSlugs")
    partners.fill("nordcloud")
    partners.press("Enter")
    expect(page.get_by_test_id("preview-production")).to_contain_text("0 of 8 → 0 of 8")  # every axis must match
    partners.press("Backspace")
    envs = page.get_by_test_id("chip-environments")
    envs.fill("production")
    envs.press("Enter")
    page.locator("#owner").fill("search-team@example.eu")
    page.locator("#expires").fill("2027-03-31")
    expect(page.locator("#diff")).to_contain_text("+owner: search-team@example.eu")
    expect(page.get_by_test_id("preview-production")).to_contain_text("0 of 8 → 1 of 8")
    page.get_by_test_id("save").click()
    expect(page.locator("#propose-result")).to_contain_text("Saved")
    text = _flag(root, "search_v2")
    assert "tenantSlugs: [gamma-oy]" in text and "state: targeted" in text and "environments: [production]" in text
    assert "owner: search-team@example.eu" in text and "expires: 2027-03-31" in text and "partner" not in text


def test_risky_change_shows_risk_and_needs_a_second_look(page: Any, clone: tuple[Path, Path]) -> None:
    root = clone[0]
    page.goto("/flags/export_zip")
    page.get_by_test_id("state-on").click()
    risk = page.get_by_test_id("risk")
    expect(risk).to_be_visible()
    expect(risk).to_contain_text("every tenant of production (8)")
    expect(page.get_by_test_id("preview-production")).to_contain_text("→ 8 of 8")
    _shot(page, "risk")
    page.get_by_test_id("state-targeted").click()
    expect(risk).to_be_hidden()
    # Clicking Save before the warning is on screen only shows it.
    page.get_by_test_id("state-on").click()
    page.get_by_test_id("save").click()
    expect(risk).to_be_visible()
    page.get_by_test_id("save").click()
    expect(page.locator("#propose-result")).to_contain_text("Saved")
    assert "state: on" in _flag(root, "export_zip")


def test_kill_with_a_reason_and_restore(page: Any, clone: tuple[Path, Path]) -> None:
    root = clone[0]
    page.goto("/flags/chat_beta")
    page.get_by_test_id("kill").click()
    expect(page.locator("#save-status")).to_contain_text("reason")
    page.get_by_test_id("kill-reason").fill("Sidebar crashes on Safari")
    page.get_by_test_id("kill").click()
    expect(page.locator("#propose-result")).to_contain_text("Killed chat_beta in every environment")
    text = _flag(root, "chat_beta")
    assert "state: off" in text and "pct: 0" in text and "reason: Sidebar crashes on Safari" in text
    for env in ("staging", "production"):
        expect(page.get_by_test_id(f"preview-{env}")).to_contain_text(f"0 of {len(TENANTS[env])}")
    expect(page.locator(".banner.killed")).to_contain_text("Sidebar crashes on Safari")
    page.once("dialog", lambda d: d.accept())  # back to 70 % at once is a risky jump: confirm it
    page.locator("#restore").click()
    expect(page.locator("#propose-result")).to_contain_text("Restored chat_beta")
    text = _flag(root, "chat_beta")
    assert "state: rollout" in text and "pct: 70" in text and "killed" not in text


def test_new_and_delete(page: Any, clone: tuple[Path, Path]) -> None:
    root = clone[0]
    page.goto("/")
    page.get_by_test_id("new-flag").click()
    page.get_by_test_id("new-key").fill("calendar_sync")
    page.get_by_test_id("new-description").fill("Two-way calendar sync")
    page.get_by_test_id("new-owner").fill("calendar@example.eu")
    page.get_by_test_id("new-create").click()
    page.wait_for_url("**/flags/calendar_sync")
    expect(page.get_by_test_id("state-off")).to_have_attribute("aria-checked", "true")
    assert "description: Two-way calendar sync" in _flag(root, "calendar_sync")

    page.goto("/flags/legacy_pop3")
    messages: list[str] = []
    page.once("dialog", lambda d: (messages.append(d.message), d.dismiss()))
    page.get_by_test_id("delete-flag").click()
    _until(page, lambda: messages)
    assert messages == ["Delete legacy_pop3? It is still on for 11 tenants."]
    assert (root / "flags" / "legacy_pop3.yaml").exists()
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("delete-flag").click()
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("#propose-result")).to_contain_text("still on for 11 tenants")
    assert not (root / "flags" / "legacy_pop3.yaml").exists()
    expect(page.get_by_test_id("flag-row-legacy_pop3")).to_have_count(0)
    page.get_by_test_id("search").fill("legacy_pop3")
    expect(page.get_by_test_id("flag-row-legacy_pop3")).to_be_visible()
    expect(page.get_by_test_id("flag-row-legacy_pop3")).to_contain_text("deleted")


# --------------------------------------------------------------------------- propose


def _remote_branches(bare: Path) -> dict[str, str]:
    out = subprocess.run(["git", "-C", str(bare), "for-each-ref", "--format=%(refname:short) %(objectname)",
                          "refs/heads"], check=True, capture_output=True, text=True).stdout
    return dict(line.split() for line in out.splitlines())


def test_propose_pushes_a_branch_and_links_the_pull_request(page: Any, clone: tuple[Path, Path]) -> None:
    root, bare = clone
    (root / "notes.txt").write_text("untracked scratch file: never part of a proposal\n", encoding="utf-8")
    readme = root / "tenants" / "production.yaml"
    original = readme.read_text(encoding="utf-8")
    readme.write_text(original + "# an unrelated edit\n", encoding="utf-8")
    page.goto("/")
    page.get_by_test_id("propose").click()
    expect(page.locator("#propose-result")).to_contain_text("not flag edits (tenants/production.yaml)")
    assert set(_remote_branches(bare)) == {"main"}
    readme.write_text(original, encoding="utf-8")

    page.get_by_test_id("propose").click()
    link = page.get_by_test_id("propose-link")
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href.startswith("https://github.com/dezky/flags/compare/main...flags/") and href.endswith("?expand=1")
    _shot(page, "proposed")
    branches = _remote_branches(bare)
    branch = next(b for b in branches if b != "main")
    assert href.split("...")[1].split("?")[0] == branch
    # The pushed commit holds the saved edits, the new flag and the deletion; nothing else.
    files = subprocess.run(["git", "-C", str(bare), "diff", "--name-status", "main", branch],
                           check=True, capture_output=True, text=True).stdout.split("\n")
    assert sorted(f for f in files if f) == ["A\tflags/calendar_sync.yaml", "D\tflags/legacy_pop3.yaml",
                                             "M\tflags/chat_beta.yaml", "M\tflags/export_zip.yaml",
                                             "M\tflags/search_v2.yaml"]
    author = subprocess.run(["git", "-C", str(bare), "log", "-1", "--format=%an <%ae>%n%B", branch],
                            check=True, capture_output=True, text=True).stdout
    assert author.startswith("Olga Operator <olga@example.eu>") and "chat_beta: " in author
    # The clone is on the proposal branch, clean; the scratch file is untouched.
    assert _git(root, "symbolic-ref", "--short", "HEAD").strip() == branch
    assert _git(root, "status", "--porcelain") == "?? notes.txt\n"
    expect(page.get_by_test_id("flag-row-chat_beta").locator(".badge.pending")).to_have_count(0)

    # Another remote: the branch is pushed and shown; a further edit adds to the same branch.
    _git(root, "remote", "set-url", "origin", str(bare))
    page.goto("/flags/old_switch")
    page.get_by_test_id("state-off").click()
    expect(page.get_by_test_id("preview-production")).to_contain_text("8 of 8 → 0 of 8")
    page.get_by_test_id("save").click()
    expect(page.locator("#propose-result")).to_contain_text("Saved")
    page.get_by_test_id("propose").click()
    expect(page.locator("#propose-result")).to_contain_text(f"Added a commit to {branch}")
    expect(page.locator("#propose-result")).to_contain_text("not GitHub")
    assert _remote_branches(bare)[branch] == _git(root, "rev-parse", "HEAD").strip()
    page.get_by_test_id("propose").click()
    expect(page.locator("#propose-result")).to_contain_text("nothing to propose")
    (root / "notes.txt").unlink()


# --------------------------------------------------------------------------- security


EVIL = """<!doctype html><html><body>
<form id="f" method="post" action="{target}/api/flags/billing_v3/save" enctype="text/plain">
<input name='{{"flag": {{"state": "on"}}, "x": "' value='"}}'></form>
<script>
fetch("{target}/api/flags/billing_v3/save", {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{flag: {{state: "on"}}}})}});
fetch("{target}/api/flags/billing_v3/save", {{method: "POST", credentials: "include",
  headers: {{"Content-Type": "application/json", "X-Flagops-Token": "guess"}},
  body: JSON.stringify({{flag: {{state: "on"}}}})}}).catch(() => {{ document.title = "blocked"; }});
setTimeout(() => document.getElementById("f").submit(), 100);
</script></body></html>"""


def test_a_forged_cross_site_request_writes_nothing(browser: Any, console: Server, clone: tuple[Path, Path]) -> None:
    root = clone[0]
    before = _flag(root, "billing_v3")
    context = browser.new_context()
    page = context.new_page()
    # The console page is open in the same browser, as an operator's would be.
    page.goto(console.url + "/")
    evil = context.new_page()
    evil.route("http://evil.example/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body=EVIL.format(target=console.url)))
    evil.goto("http://evil.example/")
    evil.wait_for_url(f"{console.url}/api/flags/billing_v3/save", timeout=5000)
    assert "cross-site write refused" in evil.content()
    assert evil.evaluate("1") == 1
    context.close()
    assert _flag(root, "billing_v3") == before


def _tc(root: Path, **kwargs: Any) -> TestClient:
    return TestClient(create_app(root, token="s" * 32, **kwargs), base_url="http://127.0.0.1:8450")


def test_writes_need_token_same_origin_and_json(tmp_path: Path) -> None:
    root, _ = make_clone(tmp_path, remote=False)
    client = _tc(root)
    before = _flag(root, "billing_v3")
    good = {"origin": "http://127.0.0.1:8450", "x-flagops-token": "s" * 32}
    body = {"flag": {"state": "on"}, "acknowledgeRisks": True}
    url = "/api/flags/billing_v3/save"
    for headers, reason in [
        ({}, "no Origin"),
        ({"origin": "http://evil.example", "x-flagops-token": "s" * 32}, "cross-site write refused"),
        ({**good, "sec-fetch-site": "cross-site"}, "Sec-Fetch-Site: cross-site"),
        ({"origin": "http://127.0.0.1:8450"}, "session token"),
        ({**good, "x-flagops-token": "t" * 32}, "session token"),
    ]:
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == 403 and reason in response.json()["error"], (headers, response.text)
    response = client.post(url, content=json.dumps(body), headers={**good, "content-type": "text/plain"})
    assert response.status_code == 403 and "JSON" in response.json()["error"]
    assert _flag(root, "billing_v3") == before
    response = client.post(url, json=body, headers={**good, "sec-fetch-site": "same-origin"})
    assert response.status_code == 200 and response.json()["written"], response.text
    assert "state: on" in _flag(root, "billing_v3")
    # A rebound DNS name cannot even read.
    assert client.get("/", headers={"host": "evil.example:8450"}).status_code == 400
    assert client.get("/", headers={"host": "localhost:8450"}).status_code == 200


def test_remote_hosts_need_allow_remote_and_a_token(tmp_path: Path, flagops: Any) -> None:
    check_bind_host("127.0.0.1", allow_remote=False, token=None)
    check_bind_host("::1", allow_remote=False, token=None)
    with pytest.raises(UsageError, match="refusing to listen"):
        check_bind_host("0.0.0.0", allow_remote=False, token=None)
    with pytest.raises(UsageError, match="needs a token"):
        check_bind_host("192.0.2.10", allow_remote=True, token=None)
    with pytest.raises(UsageError, match="too short"):
        check_bind_host("192.0.2.10", allow_remote=True, token="short")
    run = flagops("ui", "--host", "0.0.0.0", "--no-open", root=tmp_path)
    assert run.code == 2 and "--allow-remote" in run.err
    root, _ = make_clone(tmp_path / "r", remote=False)
    client = TestClient(create_app(root, token="r" * 24, remote=True), base_url="http://192.0.2.10:8450")
    assert client.get("/").status_code == 401
    assert client.get("/?token=wrong-token-wrong-token").status_code == 401
    response = client.get("/?token=" + "r" * 24, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert client.get("/").status_code == 200  # the cookie now carries the token


def test_propose_refuses_without_a_remote(tmp_path: Path) -> None:
    root, _ = make_clone(tmp_path, remote=False)
    client = _tc(root)
    headers = {"origin": "http://127.0.0.1:8450", "x-flagops-token": "s" * 32}
    response = client.post("/api/propose", json={}, headers=headers)
    assert response.status_code == 400 and "nothing to propose" in response.json()["error"]
    (root / "flags" / "old_switch.yaml").write_text(FLAGS["old_switch"].replace("state: on", "state: off"),
                                                    encoding="utf-8")
    response = client.post("/api/propose", json={}, headers=headers)
    assert response.status_code == 400 and "no remote" in response.json()["error"]
    assert _git(root, "branch", "--format=%(refname:short)").split() == ["main"]
    # A push that fails leaves no branch, no commit, and the edit in place.
    _git(root, "remote", "add", "origin", str(tmp_path / "no-such-remote.git"))
    response = client.post("/api/propose", json={}, headers=headers)
    assert response.status_code == 400, response.text
    assert "git push failed" in response.json()["error"] and "nothing was committed" in response.json()["error"]
    assert _git(root, "branch", "--format=%(refname:short)").split() == ["main"]
    assert _git(root, "status", "--porcelain") == " M flags/old_switch.yaml\n"


def test_an_invalid_flag_is_shown_not_fatal(tmp_path: Path) -> None:
    root, _ = make_clone(tmp_path, remote=False)
    (root / "flags" / "broken.yaml").write_text("key: broken\ndescription: x\nstate: sideways\npct: lots\n",
                                                encoding="utf-8")
    client = _tc(root)
    page = client.get("/")
    assert page.status_code == 200 and 'data-testid="flag-row-broken"' in page.text
    assert "stale flags not computed: 2 error(s)" in page.text
    detail = client.get("/flags/broken")
    assert detail.status_code == 200 and "sideways" in detail.text and "(schema)" in detail.text
    missing = client.get("/flags/never_was")
    assert missing.status_code == 404 and "git knows no history" in missing.text
