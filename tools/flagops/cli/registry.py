"""The table of commands, and the click group that loads a command's module only when it runs.

``flagops --help`` lists every command from :data:`COMMANDS` without importing one of them, so
a call pays only for the command it runs. A new command is a module
``flagops/cli/commands/<module>.py`` exposing ``command`` (a ``click.Command``) plus one row
here; ``tests/test_cli.py`` checks that the rows and the modules agree.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple, Optional

import click


class Entry(NamedTuple):
    module: str
    """The module under ``flagops.cli.commands`` whose ``command`` attribute is the command."""
    short_help: str
    """The command's short help as ``--help`` lists it (its docstring's first sentence)."""


COMMANDS: dict[str, Entry] = {
    "bucket-policy": Entry("bucket_policy", "Print the bucket policy that makes only tenant bundles and heads "
                                            "publicly readable."),
    "compile": Entry("compile", "Validate, then write one bundle per tenant, a manifest and the rules per "
                                "environment."),
    "dashboard": Entry("dashboard", "Render a static dashboard: the flags table with search, and one page "
                                    "per flag."),
    "delete": Entry("delete", "Remove flags/KEY.yaml; its history stays in git (flagops history KEY)."),
    "eval": Entry("eval", "Print every flag's value for one tenant as JSON: {KEY: BOOL}."),
    "fmt": Entry("fmt", "Normalise the layout of every flag file, comments kept."),
    "history": Entry("history", "Every commit that changed flags/KEY.yaml (every flag without KEY), "
                                "newest first."),
    "kill": Entry("kill", "The kill switch: state off, pct 0, scope kept, and a killed: record of what it "
                          "replaced."),
    "list": Entry("list", "Every flag: key, state, pct, a one-line scope summary and owner."),
    "new": Entry("new", "Create flags/KEY.yaml with the schema modeline, `off` unless --state says otherwise."),
    "plan": Entry("plan", "Which tenants a change turns on and off, per environment and changed flag."),
    "publish": Entry("publish", "Publish one environment: only what the store does not hold yet, the head "
                                "last, race-safe."),
    "refs": Entry("refs", "Where the code uses each flag, flags no code uses, and keys that are not flags."),
    "restore": Entry("restore", "Bring a killed flag back: the state and pct its killed: block recorded; "
                                "the block removed."),
    "rollback": Entry("rollback", "Compile revision REV from git and publish it (a deliberate rollback)."),
    "set": Entry("set", "Change one flag, validate the result, write it atomically, show the blast radius."),
    "show": Entry("show", "One flag's definition."),
    "stale": Entry("stale", "Flags to remove: fully on or fully off everywhere and unchanged for --days, "
                            "or past expiry."),
    "ui": Entry("ui", "Open the operator's console: list, edit with a live blast radius, kill, and propose "
                      "as a pull request."),
    "validate": Entry("validate", "Check every file under flags/ and tenants/ and report all problems."),
}

PACKAGE = "flagops.cli.commands"


def load(name: str) -> click.Command:
    """Import the module of command ``name`` and return its command."""
    module = importlib.import_module(f"{PACKAGE}.{COMMANDS[name].module}")
    command: click.Command = module.command
    return command


class LazyGroup(click.Group):
    """A group whose commands live in :data:`COMMANDS` and are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in COMMANDS:
            return None
        return load(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help`` from the table: no command module is imported."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in COMMANDS:
                # click's own truncation, from the table's text instead of the imported command
                text = click.Command(name, help=COMMANDS[name].short_help).get_short_help_str(limit)
            else:
                text = self.commands[name].get_short_help_str(limit)
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
