"""``flagops list``: every flag in one table (or JSON)."""

from __future__ import annotations

from typing import Any

import click

from ..app import FORMAT_OPTION, Env, pass_env, print_json


@click.command(name="list")
@FORMAT_OPTION
@pass_env
def command(env: Env, fmt: str) -> int:
    """Every flag: key, state, pct, a one-line scope summary and owner."""
    from ...listing import flag_summaries

    rows = flag_summaries(env.root)
    if fmt == "json":
        print_json(rows)
        return 0
    headers = ["KEY", "STATE", "PCT", "SCOPE", "OWNER"]
    table = [[r["key"], r["state"], "" if r["state"] != "rollout" else f"{r['pct']}%",
              scope_cell(r), r.get("owner") or ""] for r in rows]
    widths = [max(len(h), *(len(str(row[i])) for row in table)) if table else len(h)
              for i, h in enumerate(headers)]
    for row in [headers, *table]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def scope_cell(flag: dict[str, Any]) -> str:
    """The scope as it acts: a targeted flag with an empty scope reaches nobody, not everyone."""
    from ...listing import scope_summary

    summary = scope_summary(flag.get("scope"))
    if flag.get("state") == "targeted" and summary == "everyone":
        return "nobody (empty scope)"
    return summary
