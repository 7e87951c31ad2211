"""``flagops ui``: the operator's console, a local web app over this clone."""

from __future__ import annotations

from typing import Optional

import click

from ..app import Env, err, pass_env


@click.command(name="ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; anything but loopback needs --allow-remote and --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8450, show_default=True, help="Port to listen on.")
@click.option("--no-open", "no_open", is_flag=True, help="Do not open a browser window.")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host (the token then guards every request).")
@click.option("--token", envvar="FLAGOPS_UI_TOKEN", metavar="TOKEN",
              help="The access token of a remote console (at least 16 characters) [env: FLAGOPS_UI_TOKEN].")
@pass_env
def command(env: Env, host: str, port: int, no_open: bool, allow_remote: bool, token: Optional[str]) -> int:
    """Open the operator's console: list, edit with a live blast radius, kill, and propose as a pull request.

    Every save goes through the same code as flagops set (validation first, comments kept,
    atomic); the preview shows the numbers flagops plan shows; Propose commits the saved flag
    changes on a new branch, pushes it and links the pull request. Serves 127.0.0.1 only,
    unless --allow-remote is given with a --token. Ctrl-C stops it.
    """
    from ...console.app import serve

    serve(env.root, host=host, port=port, open_browser=not no_open, allow_remote=allow_remote, token=token,
          announce=err)
    return 0
