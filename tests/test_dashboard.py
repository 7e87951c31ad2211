"""flagops dashboard in a real headless Chromium: table, search, flag pages with history, dark mode.

The repository is a real git repository with backdated commits by several authors. Chromium is
Debian's (/usr/bin/chromium, installed by scripts/install-browser.sh), driven by Playwright.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Iterator

import pytest


from flagops.dashboard import MARKER
from flagops_client.evaluation import evaluate
from testkit import chromium, commit_files, run_git, screenshot

NOW = dt.datetime.now(dt.timezone.utc)

TENANTS = {
    "production": [
        {"id": "t_acme", "slug": "acme", "plan": "enterprise"},
        {"id": "t_beta", "slug": "beta-gmbh", "plan": "business", "partnerSlug": "nordcloud"},
        {"id": "t_gamma", "slug": "gamma-oy", "plan": "business"},
        {"id": "t_delta", "slug": "delta-kg", "plan": "starter"},
        {"id": "t_eps", "slug": "epsilon", "plan": "free"},
        {"id": "t_zeta", "slug": "zeta-ab", "plan": "business"},
    ],
    "staging": [
        {"id": "s_acme", "slug": "acme", "plan": "enterprise"},
        {"id": "s_beta", "slug": "beta-gmbh", "plan": "business"},
        {"id": "s_delta", "slug": "delta-kg", "plan": "starter"},
    ],
}
PAST = (NOW.date() - dt.timedelta(days=10)).isoformat()


def _yaml_tenants(tenants: list[dict[str, str]]) -> str:
    return "".join("- {" + ", ".join(f"{k}: {v}" for k, v in t.items()) + "}\n" for t in tenants)


def _commit(root: Path, files: dict[str, str], message: str, author: str, days_ago: float) -> None:
    commit_files(root, files, message, author=(author, author.split()[0].lower() + "@example.eu"), date=days_ago)


CHAT_V1 = "key: chat_beta\ndescription: Team chat in the sidebar\nowner: chat-team@example.eu\nstate: rollout\npct: 20\n"
FLAGS = {
    "chat_beta": CHAT_V1,
    "old_switch": "key: old_switch\ndescription: Legacy upload path switch\nowner: files@example.eu\nstate: on\n",
    "billing_v3": ("key: billing_v3\ndescription: Billing <v3> & SEPA mandates\nowner: billing@example.eu\n"
                   "state: targeted\nscope:\n  tenantSlugs: [acme]\n"),
    "export_zip": (f"key: export_zip\ndescription: Zipped GDPR export\nowner: platform@example.eu\n"
                   f"expires: {PAST}\nstate: targeted\nscope:\n  plans: [business]\n"),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with three commits by three authors, and its dashboard built by the CLI."""
    from flagops.cli import main

    base = tmp_path_factory.mktemp("dashboard")
    root = base / "repo"
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    _commit(root, {"tenants/production.yaml": _yaml_tenants(TENANTS["production"]),
                   "tenants/staging.yaml": _yaml_tenants(TENANTS["staging"]),
                   **{f"flags/{k}.yaml": v for k, v in FLAGS.items()}},
            "Add the first flags", "Alice Admin", days_ago=120)
    _commit(root, {"flags/chat_beta.yaml": CHAT_V1.replace("pct: 20", "pct: 50")},
            "Raise chat_beta to 50%", "Bob Builder", days_ago=20)
    _commit(root, {"flags/chat_beta.yaml": CHAT_V1.replace("pct: 20", "pct: 50")
                   + "scope:\n  plans: [business, enterprise]\n"},
            "Limit chat_beta to paying plans", "Carol Chen", days_ago=2)
    out = base / "site"
    assert main(["--root", str(root), "dashboard", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    pg = context.new_page()
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.requests = requests
    yield pg
    context.close()


def _shot(page: Any, name: str) -> None:
    screenshot(page, f"dashboard-{name}")


CHAT_FINAL = {"key": "chat_beta", "state": "rollout", "pct": 50, "scope": {"plans": ["business", "enterprise"]}}


def _expected_reach(flag: dict, env: str) -> str:
    tenants = TENANTS[env]
    return f"{sum(evaluate(flag, t, env) for t in tenants)} of {len(tenants)}"


def test_table_shows_every_flag(site: Path, page) -> None:
    page.goto((site / "index.html").as_uri())
    rows = page.locator("#flags tbody tr")
    assert rows.count() == 4
    keys = page.locator("#flags tbody th a.key").all_inner_texts()
    assert keys == ["billing_v3", "chat_beta", "export_zip", "old_switch"]
    headers = page.locator("#flags thead th").all_inner_texts()
    assert [h.lower() for h in headers[5:7]] == ["staging", "production"]  # schema order
    chat = page.locator("#flags tbody tr", has=page.locator("a", has_text="chat_beta"))
    assert chat.locator("td.num").all_inner_texts() == [_expected_reach(CHAT_FINAL, "staging"),
                                                        _expected_reach(CHAT_FINAL, "production")]
    assert chat.locator(".badge.state-rollout").inner_text() == "rollout"
    assert chat.locator(".pct").inner_text() == "50%"
    assert "Carol Chen" in chat.locator("td.last").inner_text()
    assert "plans: business, enterprise" in chat.locator("td.scope").inner_text()
    # One value for every tenant and untouched for 120 days: stale. Past its expiry: expired.
    old = page.locator("#flags tbody tr", has=page.locator("a", has_text="old_switch"))
    assert old.locator(".badge.stale").count() == 1
    assert old.locator("td.num").all_inner_texts() == ["3 of 3", "6 of 6"]
    expired = page.locator("#flags tbody tr", has=page.locator("a", has_text="export_zip"))
    assert expired.locator(".badge.expired").inner_text() == "expired"
    assert chat.locator(".badge.stale").count() == 0
    # Escaped, not interpreted.
    assert "Billing <v3> & SEPA mandates" in page.locator("#flags").inner_text()
    assert all(url.startswith("file://") for url in page.requests), page.requests
    _shot(page, "table")


def test_search_filters_keys_descriptions_and_owners(site: Path, page) -> None:
    page.goto((site / "index.html").as_uri())
    search = page.locator("#search")
    assert search.is_visible()

    def visible() -> list[str]:
        return page.locator("#flags tbody tr:visible a.key").all_inner_texts()

    search.fill("billing")
    assert visible() == ["billing_v3"]
    assert page.locator("#count").inner_text() == "1 of 4 flags"
    search.fill("sidebar")  # a word of a description
    assert visible() == ["chat_beta"]
    search.fill("platform@")  # an owner
    assert visible() == ["export_zip"]
    search.fill("ZIP gdpr")  # every term, any case
    assert visible() == ["export_zip"]
    search.fill("nothing-like-this")
    assert visible() == []
    assert page.locator("#no-match").is_visible()
    _shot(page, "search-empty")
    search.press("Escape")
    assert len(visible()) == 4
    page.locator("h1").click()  # focus elsewhere: "/" jumps back to the search box
    page.keyboard.press("/")
    page.keyboard.type("chat")
    assert visible() == ["chat_beta"]
    _shot(page, "search")
    search.press("Enter")  # exactly one match: open it
    page.wait_for_url("**/flags/chat_beta.html")


def test_flag_page_shows_the_history(site: Path, page) -> None:
    page.goto((site / "index.html").as_uri())
    page.locator("a.key", has_text="chat_beta").click()
    page.wait_for_url("**/flags/chat_beta.html")
    assert page.locator("h1").inner_text().startswith("chat_beta")
    events = page.locator(".timeline > li")
    assert events.count() == 3
    assert events.locator(".subject").all_inner_texts() == [
        "Limit chat_beta to paying plans", "Raise chat_beta to 50%", "Add the first flags"]
    assert events.locator(".who").all_inner_texts() == ["Carol Chen", "Bob Builder", "Alice Admin"]
    raise_pct = events.nth(1).locator(".changes tbody tr")
    assert raise_pct.all_inner_texts() == ["pct\t20\t50"]
    limit = events.nth(0).locator(".changes tbody tr").all_inner_texts()
    assert limit == ["scope.plans\t[]\t[business, enterprise]"]
    assert events.nth(2).locator(".badge.action").inner_text() == "created"
    # Per-environment reach and the enabled tenants.
    headings = page.locator("section[aria-labelledby=reach] h3").all_inner_texts()
    assert headings == [f"{env}: {_expected_reach(CHAT_FINAL, env)} tenants" for env in ("staging", "production")]
    page.locator("section[aria-labelledby=reach] summary").first.click()
    assert page.locator("section[aria-labelledby=reach] .slugs").first.is_visible()
    page.locator("summary", has_text="flags/chat_beta.yaml").click()
    assert "pct: 50" in page.locator("pre code").inner_text()
    _shot(page, "flag")
    page.locator("nav.crumbs a").click()
    page.wait_for_url("**/index.html")


def test_works_without_javascript(site: Path, browser) -> None:
    context = browser.new_context(java_script_enabled=False)
    pg = context.new_page()
    pg.goto((site / "index.html").as_uri())
    assert pg.locator("#flags tbody tr:visible").count() == 4
    assert not pg.locator("#search").is_visible()  # a search box that could not work stays hidden
    context.close()


def test_dark_mode(site: Path, browser) -> None:
    colours = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme, viewport={"width": 1400, "height": 900})
        pg = context.new_page()
        pg.goto((site / "flags" / "chat_beta.html").as_uri())
        colours[scheme] = pg.evaluate("getComputedStyle(document.body).backgroundColor")
        if scheme == "dark":
            _shot(pg, "flag-dark")
        context.close()
    assert colours == {"light": "rgb(255, 255, 255)", "dark": "rgb(17, 20, 24)"}


def test_rebuild_replaces_only_a_dashboard(site: Path, tmp_path: Path, flagops) -> None:
    assert (site / MARKER).is_file()
    assert not any("tenants" in p.relative_to(site).parts for p in site.rglob("*"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine", encoding="utf-8")
    run = flagops("dashboard", "--out", str(busy), root=site.parent / "repo")
    assert run.code == 1 and "refusing to replace it" in run.err
    assert (busy / "keep.txt").read_text(encoding="utf-8") == "mine"


def test_published_beside_the_bundles(site: Path, tmp_path: Path, flagops, browser) -> None:
    store = tmp_path / "store"
    store.mkdir()
    run = flagops("publish", "--env", "staging", "--target", store.as_uri(), "--dashboard", str(site),
                  root=site.parent / "repo")
    assert run.code == 0, run.err
    assert "files uploaded under dashboard/" in run.err
    assert (store / "staging" / "manifest.json").is_file()
    context = browser.new_context()
    pg = context.new_page()
    pg.goto((store / "dashboard" / "index.html").as_uri())
    assert pg.locator("#flags tbody tr").count() == 4
    pg.locator("a.key", has_text="old_switch").click()
    pg.wait_for_url("**/dashboard/flags/old_switch.html")
    assert pg.locator(".timeline > li").count() == 1
    context.close()


def test_enabled_tenant_lists_are_capped_but_counts_exact(site: Path) -> None:
    from flagops.dashboard import dashboard_pages

    files, notes, count = dashboard_pages(site.parent / "repo", tenant_limit=1)
    page = files["flags/old_switch.html"].decode("utf-8")
    assert count == 4 and notes == []
    assert "production: 6 of 6 tenants" in page and "and 5 more" in page
    assert "staging: 3 of 3 tenants" in page and "and 2 more" in page
    assert page.count("<li>acme</li>") == 2  # the first tenant of each environment


def test_invalid_repository_is_refused(tmp_path: Path, flagops) -> None:
    root = tmp_path / "bad"
    (root / "flags").mkdir(parents=True)
    (root / "flags" / "broken.yaml").write_text("key: broken\nstate: sideways\n", encoding="utf-8")
    run = flagops("dashboard", "--out", str(tmp_path / "site"), root=root)
    assert run.code == 1
    assert "fix them first" in run.err and "Traceback" not in run.err
    assert not (tmp_path / "site").exists()
