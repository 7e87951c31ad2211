"""``flagops refs``: where the code uses each flag, unused flags, and keys that are not flags."""

from __future__ import annotations

from pathlib import Path

import click

from ..app import Env, err, pass_env, report


@click.command(name="refs")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "github", "json"]), default="text",
              show_default=True, help="text: three sections; github: workflow annotations for unknown keys "
              "and unreferenced flags; json: one document.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Processes to scan with [default: one per CPU for large trees].")
@click.option("--strict", is_flag=True, help="Exit 1 when a flag is unreferenced or a key is unknown.")
@pass_env
def command(env: Env, paths: tuple[Path, ...], fmt: str, jobs: int | None, strict: bool) -> int:
    """Where the code uses each flag, flags no code uses, and keys that are not flags.

    Scans TypeScript, JavaScript, Vue and Python files under PATH... (node_modules, build
    output, virtualenvs and hidden directories are skipped) for flag keys in string literals
    and flags.KEY reads. A literal that is not a flag is reported when it stands in a flag call
    (isEnabled('x'), is_enabled("x"), useFlag('x'), flags['x'], flags.x) or when it is one or
    two edits away from a flag key (a likely typo, with a did-you-mean).
    """
    from ...errors import EXIT_INVALID
    from ...listing import read_flags
    from ...refs import scan
    from ...reporters.refs import summary

    keys = sorted(read_flags(env.root))
    found = scan([str(p) for p in paths], keys, jobs=jobs)
    report("refs", fmt, found)
    if fmt != "json":
        err(summary(found, len(keys)))
    return EXIT_INVALID if strict and (found.unknown or found.unreferenced) else 0
