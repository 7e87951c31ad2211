"""``flagops history``: the semantic change of a flag in every commit that touched it."""

from __future__ import annotations

from typing import Optional

import click

from ..app import FORMAT_OPTION, Env, err, pass_env, report


@click.command(name="history")
@click.argument("key", required=False)
@click.option("--limit", type=click.IntRange(min=0), default=None, metavar="N",
              help="Show at most N entries (the newest).")
@click.option("--since", metavar="DATE", default=None,
              help="Only changes authored on or after DATE (YYYY-MM-DD or ISO-8601 time).")
@FORMAT_OPTION
@pass_env
def command(env: Env, key: Optional[str], limit: Optional[int], since: Optional[str], fmt: str) -> int:
    """Every commit that changed flags/KEY.yaml (every flag without KEY), newest first.

    Each entry names the time (UTC), the short commit hash, the author's e-mail and the
    semantic change of the flag: fields before and after (state, pct, description, owner,
    expires, each scope axis), not a text diff; an old version that does not parse is shown
    as unparseable. A change that only reformats the file is marked as such.

    \b
    2026-10-09 10:00 UTC  1a2b3c4d5e6f  carol@dezky.eu  pct 30 -> 60  "jmap: 60%"
    """
    from ...errors import FlagopsError
    from ...history import flag_history

    shallow: list[FlagopsError] = []
    # A shallow clone still answers with what it holds; stderr says what is missing.
    entries = flag_history(env.root, key, limit=limit, since=since, on_shallow=shallow.append)
    for problem in shallow:
        err(f"warning: {problem.message}; showing the {len(entries)} change(s) this clone holds")
        if problem.hint:
            err(f"hint: {problem.hint}")
    what = f'"{key}"' if key else "any flag"
    report("history", fmt, entries, show_key=key is None,
           empty_message=f"no commit changed {what}" + (f" since {since}" if since else ""))
    if entries and limit is not None and len(entries) == limit:
        err(f"showing the newest {limit} entries (--limit)")
    return 0
