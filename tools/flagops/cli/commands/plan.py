"""``flagops plan``: which tenants a change turns on and off, with its risks."""

from __future__ import annotations

from typing import Optional

import click

from ..app import Env, err, pass_env, report


@click.command(name="plan")
@click.option("--base", required=True, metavar="REF",
              help="The revision the change starts from (a branch, tag or commit, e.g. origin/main).")
@click.option("--head", default=None, metavar="REF",
              help="The revision to compare [default: the working tree, uncommitted changes included].")
@click.option("--env", "environments", multiple=True, metavar="ENV",
              help="Environment to plan; repeat for several (default: every one with an inventory).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True, help="json lists every flipped tenant; markdown is a pull-request comment.")
@click.option("--fail-on-risk", is_flag=True, help="Exit 1 when the plan holds a risky change.")
@pass_env
def command(env: Env, base: str, head: Optional[str], environments: tuple[str, ...], fmt: str,
            fail_on_risk: bool) -> int:
    """Which tenants a change turns on and off, per environment and changed flag.

    Both sides are evaluated against the head's tenant inventories. Flags whose definition
    is unchanged are not listed; every count is exact. Risky changes are called out: a
    rollout moving by more than 50 points at once, a flag turned on for every tenant of an
    environment, and a deleted flag that was still on somewhere; with --fail-on-risk they
    make the exit code 1. The head must be valid; an invalid base is planned with its invalid
    flags counted as off (a warning says so). The markdown stays under GitHub's comment limit.
    """
    from ...errors import EXIT_INVALID
    from ...plan import make_plan

    result = make_plan(env.root, base, head, environments=environments)
    if result.base_problems:
        err(f"warning: the base has {len(result.base_problems)} validation error(s); its invalid flags "
            f"({', '.join(result.invalid_base_flags) or 'none'}) count as off for every tenant")
    report("plan", fmt, result)
    for environment, key, message in result.risks:
        err(f"risk: {key} in {environment}: {message}")
    if fail_on_risk and result.risks:
        err(f"{len(result.risks)} risky change(s) (--fail-on-risk)")
        return EXIT_INVALID
    return 0
