"""``flagops kill``: the kill switch, optionally committed and published at once (break-glass)."""

from __future__ import annotations

from typing import Optional

import click

from ..app import Env, err, pass_env, terminal_progress
from ._edits import KILL_WARNINGS, show_edit


@click.command(name="kill")
@click.argument("key")
@click.option("--reason", help="Why; goes into the commit message.")
@click.option("--commit", is_flag=True, help="Commit only this flag file as the current git user.")
@click.option("--publish", is_flag=True,
              help="Break-glass: commit, compile --env and publish to --target at once (implies --commit).")
@click.option("--env", "environment", metavar="ENV", help="The environment to publish (with --publish).")
@click.option("--target", metavar="URL", help="s3://bucket/prefix or file:///dir (with --publish).")
@click.option("--endpoint-url", metavar="URL", help="S3 endpoint (with --publish; else AWS_ENDPOINT_URL).")
@pass_env
def command(env: Env, key: str, reason: Optional[str], commit: bool, publish: bool, environment: Optional[str],
            target: Optional[str], endpoint_url: Optional[str]) -> int:
    """The kill switch: state off, pct 0, scope kept.

    With --commit the change is committed (only this file) with the reason in the message.
    With --publish (break-glass, needs --reason, --env and --target) the kill is committed,
    that environment compiled and published at once; push the commit afterwards so the
    scheduled publish of main can move on (until then it refuses rather than revert the kill).
    """
    from ...errors import UsageError

    if publish:
        if not (reason and environment and target):
            raise UsageError("--publish needs --reason, --env and --target")
        from ...breakglass import break_glass

        outcome = break_glass(env.root, key, reason=reason, environment=environment, target=target,
                              endpoint_url=endpoint_url, progress=terminal_progress("publish"),
                              warn=lambda message: err(f"warning: {message}"))
        show_edit(outcome.edit, verb="killed", expected=KILL_WARNINGS)
        for line in outcome.report_lines():
            click.echo(line)
        return 0
    if (environment or target or endpoint_url) and not publish:
        raise UsageError("--env, --target and --endpoint-url only apply with --publish")
    from ... import editing

    if commit:
        editing.require_git_user(env.root)  # refuse before writing: no half-done kill
    edit = editing.kill_flag(env.root, key)
    show_edit(edit, verb="killed", expected=KILL_WARNINGS)
    if commit:
        if not edit.changed:
            err("nothing to commit: the flag was already off")
            return 0
        sha = editing.commit_file(env.root, edit.path, editing.kill_message(key, reason))
        err(f"committed {sha[:12]}: {editing.kill_message(key, reason).splitlines()[0]}")
    return 0
