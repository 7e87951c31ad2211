"""stale, refs and dashboard: operator views over the flags, their history and the code."""

from __future__ import annotations

from pathlib import Path

import click

from ..dashboard import build_dashboard
from ..errors import EXIT_INVALID
from ..listing import read_flags
from ..refs import format_text as format_refs
from ..refs import scan
from ..stale import DEFAULT_DAYS, find_stale, format_stale
from ._app import FORMAT_OPTION, Env, cli, err, pass_env, print_json


@cli.command()
@click.option("--days", type=click.IntRange(min=0), default=DEFAULT_DAYS, show_default=True,
              help="A flag serving one value is stale once its file has not changed for this long.")
@click.option("--format", "fmt", type=click.Choice(["text", "github", "json"]), default="text",
              show_default=True, help="text: one entry per flag; github: workflow annotations; "
              'json: [{"key","reason","since","owner","action"}].')
@click.option("--strict", is_flag=True, help="Exit 1 when any stale flag is found.")
@pass_env
def stale(env: Env, days: int, fmt: str, strict: bool) -> int:
    """Flags to remove: fully on or fully off everywhere and unchanged for --days, or past expiry.

    "Fully on/off" is decided by compiling the flag for every tenant of every environment's
    inventory; "unchanged" by the git history of its file (uncommitted edits count as changes).
    """
    found, notes = find_stale(env.root, days=days)
    for note in notes:
        err(f"warning: {note}")
    out = format_stale(found, fmt)
    if out:
        click.echo(out, nl=False)
    if fmt != "json":
        err(f"{len(found)} stale flag{'s' * (len(found) != 1)}")
    return EXIT_INVALID if strict and found else 0


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@FORMAT_OPTION
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Processes to scan with [default: one per CPU for large trees].")
@click.option("--strict", is_flag=True, help="Exit 1 when a flag is unreferenced or a key is unknown.")
@pass_env
def refs(env: Env, paths: tuple[Path, ...], fmt: str, jobs: int | None, strict: bool) -> int:
    """Where the code uses each flag, flags no code uses, and keys that are not flags.

    Scans TypeScript, JavaScript, Vue and Python files under PATH... (node_modules, build
    output, virtualenvs and hidden directories are skipped) for flag keys in string literals
    and flags.KEY reads. A literal that is not a flag is reported when it stands in a flag call
    (isEnabled('x'), is_enabled("x"), useFlag('x'), flags['x'], flags.x) or when it is one or
    two edits away from a flag key (a likely typo, with a did-you-mean).
    """
    keys = sorted(read_flags(env.root))
    report = scan([str(p) for p in paths], keys, jobs=jobs)
    if fmt == "json":
        print_json(report.to_dict())
    else:
        click.echo(format_refs(report), nl=False)
        err(f"{report.files} files scanned: {len(report.references)} of {len(keys)} flags referenced, "
            f"{len(report.unknown)} unknown key(s)")
    return EXIT_INVALID if strict and (report.unknown or report.unreferenced) else 0


@cli.command()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write the site to (replaced as a whole; must be empty or a dashboard).")
@click.option("--days", type=click.IntRange(min=0), default=DEFAULT_DAYS, show_default=True,
              help="Days without a change after which a flag serving one value is marked stale.")
@pass_env
def dashboard(env: Env, out: Path, days: int) -> int:
    """Render a static dashboard: the flags table with search, and one page per flag.

    Opens from file:// (OUT/index.html) and works beside the published bundles; no network
    requests, no framework, JavaScript only for the search box.
    """
    result = build_dashboard(env.root, env.path(out), days=days)
    for note in result.notes:
        err(f"warning: {note}")
    err(f"dashboard: {result.flags} flags, {result.pages} pages -> {result.out / 'index.html'}")
    return 0
