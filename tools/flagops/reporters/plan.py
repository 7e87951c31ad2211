"""``flagops plan``: text, markdown (a pull-request comment, capped) and json (the contract)."""

from __future__ import annotations

import os
from typing import Optional

from ..impact import EXAMPLES
from ..plan import Plan
from ..render import render
from .base import Reporters, json_document

#: GitHub refuses comments longer than 65,536 characters; the markdown stays below this.
COMMENT_LIMIT = 60_000
#: Where the workflow uploads the full JSON plan.
ARTIFACT = "flagops-plan"


def text(plan: Plan) -> str:
    return render("plan.txt.j2", plan=plan, examples=EXAMPLES)


def _artifact_link() -> Optional[str]:
    """This run's page (its artifacts are listed there) inside GitHub Actions, else None."""
    parts = [os.environ.get(name) for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else None


def markdown(plan: Plan, *, limit: int = COMMENT_LIMIT) -> str:
    """The comment, under ``limit`` characters: past it, each environment's table shows its
    first flags and "… and N more flags", and a note points at the full JSON plan."""

    def page(rows: Optional[int]) -> str:
        return render("plan.md.j2", plan=plan, examples=EXAMPLES, rows=rows, artifact=ARTIFACT,
                      artifact_link=_artifact_link())

    whole = page(None)
    if len(whole) <= limit:
        return whole
    low, high = 0, max((len(p.flags) for p in plan.environments.values()), default=0)
    while low < high:  # the most rows per table that still fit
        middle = (low + high + 1) // 2
        if len(page(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return page(low)


def json_report(plan: Plan) -> str:
    """``{"base", "head", "headCommit", "dirty", "environments": {env: {"tenants", "flags"}}}``."""
    return json_document(plan.to_dict())


REPORTERS = Reporters(text=text, markdown=markdown, json=json_report)
