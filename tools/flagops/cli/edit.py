"""new, set, kill and fmt: change flag files from the command line, comments and layout kept."""

from __future__ import annotations

from typing import Optional

import click

from .. import editing
from ..errors import EXIT_INVALID, UsageError
from ..formatters import format_text
from ..problems import Result
from ._app import Env, cli, err, pass_env, terminal_progress


#: Warnings a kill causes on purpose (the scope and pct are kept for turning the flag back on).
KILL_WARNINGS = ("ignored-scope", "ignored-pct")


def _show(edit: editing.EditResult, *, verb: str, expected: tuple[str, ...] = ()) -> None:
    """Blast radius on stdout (the requested output); what was written on stderr."""
    for note in edit.notes:
        err(f"note: {note}")
    others = [p for p in edit.validation.problems
              if p.path == editing.flag_rel(edit.key) and p.severity == "warning" and p.rule not in expected]
    if others:
        click.echo(format_text(Result(others)), nl=False, err=True)
    click.echo(f"blast radius of {edit.key} (before -> after):")
    for line in edit.describe_radius() or ["no tenant inventories: nothing to count"]:
        click.echo(f"  {line}")
    rel = editing.flag_rel(edit.key)
    if edit.written:
        err(f"{verb} {rel}")
    elif not edit.changed:
        err(f"{rel} unchanged")


@cli.command()
@click.argument("key")
@click.option("--description", required=True, help="What the flag gates, for operators.")
@click.option("--owner", help="Who answers for the flag (a team address).")
@click.option("--expires", metavar="YYYY-MM-DD", help="Date after which the flag should be removed.")
@pass_env
def new(env: Env, key: str, description: str, owner: Optional[str], expires: Optional[str]) -> int:
    """Create flags/KEY.yaml as an `off` flag with the schema modeline.

    Refuses a key that is taken or does not match the key pattern.
    """
    edit = editing.new_flag(env.root, key, description, owner=owner, expires=expires)
    click.echo(edit.after, nl=False)
    err(f"wrote {editing.flag_rel(key)} (state off; flagops set {key} --state ... to turn it on)")
    return 0


def _csv(value: Optional[str]) -> Optional[list[str]]:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


@cli.command(name="set")
@click.argument("key")
@click.option("--state", type=click.Choice(["off", "on", "targeted", "rollout"]))
@click.option("--pct", type=click.IntRange(0, 100), help="Rollout percentage, 0..100.")
@click.option("--add-plan", multiple=True, metavar="PLAN")
@click.option("--remove-plan", multiple=True, metavar="PLAN")
@click.option("--add-tenant", multiple=True, metavar="SLUG")
@click.option("--remove-tenant", multiple=True, metavar="SLUG")
@click.option("--add-partner", multiple=True, metavar="SLUG")
@click.option("--remove-partner", multiple=True, metavar="SLUG")
@click.option("--environments", metavar="E,...", help='Replace the environments axis ("" clears it).')
@click.option("--description", help="New description.")
@click.option("--owner", help='New owner ("" removes it).')
@click.option("--expires", metavar="YYYY-MM-DD", help='New expiry date ("" removes it).')
@click.option("--dry-run", is_flag=True, help="Validate and show the blast radius; write nothing.")
@pass_env
def set_cmd(env: Env, key: str, state: Optional[str], pct: Optional[int], add_plan: tuple[str, ...],
            remove_plan: tuple[str, ...], add_tenant: tuple[str, ...], remove_tenant: tuple[str, ...],
            add_partner: tuple[str, ...], remove_partner: tuple[str, ...], environments: Optional[str],
            description: Optional[str], owner: Optional[str], expires: Optional[str], dry_run: bool) -> int:
    """Change one flag, validate the result, write it atomically, show the blast radius.

    The result is validated like `flagops validate` before anything is written; an invalid
    result is refused (exit 1) and the file stays as it was. Prints, per environment, how many
    tenants the flag is on for before and after ("~N of M tenants") and who flips.
    """
    change = editing.FlagChange(
        state=state, pct=pct,
        add={"plans": list(add_plan), "tenantSlugs": list(add_tenant), "partnerSlugs": list(add_partner)},
        remove={"plans": list(remove_plan), "tenantSlugs": list(remove_tenant),
                "partnerSlugs": list(remove_partner)},
        environments=_csv(environments), description=description, owner=owner, expires=expires)
    edit = editing.edit_flag(env.root, key, change, dry_run=dry_run)
    _show(edit, verb="wrote")
    if dry_run:
        err("dry run: nothing written")
    return 0


@cli.command()
@click.argument("key")
@click.option("--reason", help="Why; goes into the commit message.")
@click.option("--commit", is_flag=True, help="Commit only this flag file as the current git user.")
@click.option("--publish", is_flag=True,
              help="Break-glass: commit, compile --env and publish to --target at once (implies --commit).")
@click.option("--env", "environment", metavar="ENV", help="The environment to publish (with --publish).")
@click.option("--target", metavar="URL", help="s3://bucket/prefix or file:///dir (with --publish).")
@click.option("--endpoint-url", metavar="URL", help="S3 endpoint (with --publish; else AWS_ENDPOINT_URL).")
@pass_env
def kill(env: Env, key: str, reason: Optional[str], commit: bool, publish: bool, environment: Optional[str],
         target: Optional[str], endpoint_url: Optional[str]) -> int:
    """The kill switch: state off, pct 0, scope kept.

    With --commit the change is committed (only this file) with the reason in the message.
    With --publish (break-glass, needs --reason, --env and --target) the kill is committed,
    that environment compiled and published at once; push the commit afterwards so the
    scheduled publish of main can move on (until then it refuses rather than revert the kill).
    """
    if publish:
        if not (reason and environment and target):
            raise UsageError("--publish needs --reason, --env and --target")
        from ..breakglass import break_glass

        outcome = break_glass(env.root, key, reason=reason, environment=environment, target=target,
                              endpoint_url=endpoint_url, progress=terminal_progress("publish"),
                              warn=lambda message: err(f"warning: {message}"))
        _show(outcome.edit, verb="killed", expected=KILL_WARNINGS)
        for line in outcome.report_lines():
            click.echo(line)
        return 0
    if (environment or target or endpoint_url) and not publish:
        raise UsageError("--env, --target and --endpoint-url only apply with --publish")
    if commit:
        editing.require_git_user(env.root)  # refuse before writing: no half-done kill
    edit = editing.kill_flag(env.root, key)
    _show(edit, verb="killed", expected=KILL_WARNINGS)
    if commit:
        if not edit.changed:
            err("nothing to commit: the flag was already off")
            return 0
        sha = editing.commit_file(env.root, edit.path, editing.kill_message(key, reason))
        err(f"committed {sha[:12]}: {editing.kill_message(key, reason).splitlines()[0]}")
    return 0


@cli.command()
@click.option("--check", is_flag=True, help="Only list files that would change; exit 1 if any.")
@pass_env
def fmt(env: Env, check: bool) -> int:
    """Normalise the layout of every flag file, comments kept.

    Modeline first; fields in the order key, description, owner, expires, state, pct, scope;
    scope axes in the order plans, tenantSlugs, partnerSlugs, environments as flow lists
    [a, b]. CI runs `flagops fmt --check`.
    """
    result = editing.format_flags(env.root, check=check)
    if result.problems:
        click.echo(format_text(Result(result.problems)), nl=False, err=True)
    for rel in result.changed:
        click.echo(rel)
    if check:
        if result.changed:
            err(f"{len(result.changed)} file(s) not formatted; run flagops fmt")
            return EXIT_INVALID
        err(f"{result.unchanged} file(s) already formatted")
    else:
        err(f"reformatted {len(result.changed)} file(s), {result.unchanged} already formatted")
    return EXIT_INVALID if result.problems else 0
