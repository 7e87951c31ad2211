"""history and plan: what changed in git, and what a change turns on and off."""

from __future__ import annotations

from typing import Optional

import click

from ..errors import FlagopsError
from ..history import flag_history
from ..plan import make_plan, render_plan
from ..render import render
from ._app import FORMAT_OPTION, Env, cli, err, pass_env, print_json


@cli.command()
@click.argument("key", required=False)
@click.option("--limit", type=click.IntRange(min=0), default=None, metavar="N",
              help="Show at most N entries (the newest).")
@click.option("--since", metavar="DATE", default=None,
              help="Only changes authored on or after DATE (YYYY-MM-DD or ISO-8601 time).")
@FORMAT_OPTION
@pass_env
def history(env: Env, key: Optional[str], limit: Optional[int], since: Optional[str], fmt: str) -> int:
    """Every commit that changed flags/KEY.yaml (every flag without KEY), newest first.

    Each entry names the commit, its author and the semantic change of the flag: fields
    before and after (state, pct, description, owner, expires, each scope axis), not a
    text diff. A change that only reformats the file is marked as such.

    \b
    2026-10-09  carol@dezky.eu  pct 30 -> 60  "jmap: 60%"
    """
    shallow: list[FlagopsError] = []
    # A shallow clone still answers with what it holds; stderr says what is missing.
    entries = flag_history(env.root, key, limit=limit, since=since, on_shallow=shallow.append)
    for problem in shallow:
        err(f"warning: {problem.message}; showing the {len(entries)} change(s) this clone holds")
        if problem.hint:
            err(f"hint: {problem.hint}")
    if fmt == "json":
        print_json(entries)
        return 0
    what = f'"{key}"' if key else "any flag"
    click.echo(render("history.txt.j2", entries=entries, show_key=key is None,
                      empty_message=f"no commit changed {what}" + (f" since {since}" if since else "")),
               nl=False)
    if entries and limit is not None and len(entries) == limit:
        err(f"showing the newest {limit} entries (--limit)")
    return 0


@cli.command()
@click.option("--base", required=True, metavar="REF",
              help="The revision the change starts from (a branch, tag or commit, e.g. origin/main).")
@click.option("--head", default=None, metavar="REF",
              help="The revision to compare [default: the working tree, uncommitted changes included].")
@click.option("--env", "environments", multiple=True, metavar="ENV",
              help="Environment to plan; repeat for several (default: every one with an inventory).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True, help="json lists every flipped tenant; markdown is a pull-request comment.")
@pass_env
def plan(env: Env, base: str, head: Optional[str], environments: tuple[str, ...], fmt: str) -> int:
    """Which tenants a change turns on and off, per environment and changed flag.

    Both sides are evaluated against the head's tenant inventories. Flags whose definition
    is unchanged are not listed. Risky changes are called out: a rollout moving by more
    than 50 points at once, a flag turned on for every production tenant, and a deleted
    flag that was still on somewhere. The head must be valid; an invalid base is planned
    with its invalid flags counted as off (a warning says so).
    """
    result = make_plan(env.root, base, head, environments=environments)
    if result.base_problems:
        err(f"warning: the base has {len(result.base_problems)} validation error(s); its invalid flags "
            f"({', '.join(result.invalid_base_flags) or 'none'}) count as off for every tenant")
    click.echo(render_plan(result, fmt), nl=False)
    for environment, key, message in result.risks:
        err(f"risk: {key} in {environment}: {message}")
    return 0
