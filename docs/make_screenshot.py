"""Regenerate docs/dashboard.png: the dashboard of this repository in headless Chromium.

    .venv/bin/python docs/make_screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from flagops.cli import main as main_cli

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        if main_cli(["--root", str(ROOT), "dashboard", "--out", str(site)]) != 0:
            return 1
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto((site / "index.html").as_uri())
            page.locator("#search").fill("mail")
            page.screenshot(path=str(ROOT / "docs" / "dashboard.png"))
            browser.close()
    print(ROOT / "docs" / "dashboard.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
