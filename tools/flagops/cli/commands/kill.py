"""``flagops kill``: the kill switch, recorded in the flag file, optionally committed and published
at once (break-glass)."""

from __future__ import annotations

from typing import Optional

import click

from ..app import Env, err, pass_env, terminal_progress
from ._edits import KILL_WARNINGS, YES_OPTION, Confirmation, finish, run_edit


@click.command(name="kill")
@click.argument("key")
@click.option("--reason", help="Why; recorded in the killed: block and the commit message.")
@click.option("--commit", is_flag=True, help="Commit only this flag file as the current git user.")
@click.option("--publish", is_flag=True,
              help="Break-glass: commit, compile and publish to --target at once (implies --commit).")
@click.option("--env", "environments", metavar="ENV", multiple=True,
              help="With --publish: an environment to publish (repeat it); default: every one with an inventory.")
@click.option("--target", metavar="URL", help="s3://bucket/prefix or file:///dir (with --publish).")
@click.option("--endpoint-url", metavar="URL", help="S3 endpoint (with --publish; else AWS_ENDPOINT_URL).")
@YES_OPTION
@pass_env
def command(env: Env, key: str, reason: Optional[str], commit: bool, publish: bool, environments: tuple[str, ...],
            target: Optional[str], endpoint_url: Optional[str], yes: bool) -> int:
    """The kill switch: state off, pct 0, scope kept, and a killed: record of what it replaced.

    The killed: block holds the reason, the time, who, and the state and pct before the kill;
    `flagops restore KEY` brings the flag back as it was. With --commit the change is
    committed (only this file) with the reason in the message. With --publish (break-glass,
    needs --reason and --target) the kill is committed, and every environment with an inventory
    (or each --env) compiled and published at once, the kill in each head before any bundle; push the commit afterwards so the scheduled publish of main can move on
    (until then it refuses rather than revert the kill). A risky kill (a rollout dropping by
    more than 50 points) needs --yes or a "yes" on a terminal.
    """
    from ...errors import UsageError

    if publish:
        if not (reason and target):
            raise UsageError("--publish needs --reason and --target")
        from ...breakglass import break_glass

        confirmation = Confirmation(yes, expected=KILL_WARNINGS)
        outcome = break_glass(env.root, key, reason=reason, environments=environments, target=target,
                              endpoint_url=endpoint_url, progress=terminal_progress("publish"),
                              warn=lambda message: err(f"warning: {message}"), confirm=confirmation)
        finish(outcome.edit, confirmation, verb="killed")
        for line in outcome.report_lines():
            click.echo(line)
        return 0
    if (environments or target or endpoint_url) and not publish:
        raise UsageError("--env, --target and --endpoint-url only apply with --publish")
    from ...edit import kill_flag, kill_message
    from ...git import commit_paths, require_user

    if commit:
        require_user(env.root)  # refuse before writing: no half-done kill
    edit = run_edit(kill_flag, env.root, key, reason=reason, yes=yes, verb="killed", expected=KILL_WARNINGS)
    if commit:
        if not edit.changed:
            err("nothing to commit: the flag was already off")
            return 0
        sha = commit_paths(env.root, [edit.path], kill_message(key, reason))
        err(f"committed {sha[:12]}: {kill_message(key, reason).splitlines()[0]}")
    return 0
