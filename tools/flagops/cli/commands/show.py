"""``flagops show``: one flag's definition."""

from __future__ import annotations

from typing import Any

import click

from ..app import FORMAT_OPTION, Env, pass_env, print_json
from .list import scope_cell


@click.command(name="show")
@click.argument("key")
@FORMAT_OPTION
@pass_env
def command(env: Env, key: str, fmt: str) -> int:
    """One flag's definition."""
    from ...listing import find_flag

    flag = find_flag(env.root, key)
    if fmt == "json":
        print_json(flag)
        return 0
    lines: list[tuple[str, Any]] = [("key", flag["key"]), ("description", flag.get("description")),
                                    ("state", flag.get("state"))]
    if flag.get("state") == "rollout" or flag.get("pct") is not None:
        lines.append(("pct", "-" if flag.get("pct") is None else flag["pct"]))
    lines += [("scope", scope_cell(flag)), ("owner", flag.get("owner") or "-"),
              ("expires", flag.get("expires") or "-")]
    killed = flag.get("killed")
    if killed:
        was = f"{killed.get('state')}" + (f", pct {killed['pct']}" if "pct" in killed else "")
        reason = f": {killed['reason']}" if killed.get("reason") else ""
        lines.append(("killed", f"{killed.get('at')} by {killed.get('by')} (was {was}){reason}; "
                                f"flagops restore {flag['key']} brings it back"))
    for name, value in lines:
        click.echo(f"{name + ':':<13}{value}")
    return 0
