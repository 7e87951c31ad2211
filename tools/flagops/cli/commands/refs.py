"""``flagops refs``: where the code uses each flag, unused flags, and keys that are not flags."""

from __future__ import annotations

from pathlib import Path

import click

from ..app import FORMAT_OPTION, Env, err, pass_env, print_json


@click.command(name="refs")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@FORMAT_OPTION
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
    from ...refs import format_text as format_refs
    from ...refs import scan

    keys = sorted(read_flags(env.root))
    report = scan([str(p) for p in paths], keys, jobs=jobs)
    if fmt == "json":
        print_json(report.to_dict())
    else:
        click.echo(format_refs(report), nl=False)
        err(f"{report.files} files scanned: {len(report.references)} of {len(keys)} flags referenced, "
            f"{len(report.unknown)} unknown key(s)")
    return EXIT_INVALID if strict and (report.unknown or report.unreferenced) else 0
