"""The one Jinja2 environment of flagops: templates live in files under ``templates/``.

``StrictUndefined`` turns a misspelt variable into an error instead of a silent blank. HTML
templates are autoescaped; text and markdown templates are not (their callers escape what
goes into a markdown table with the ``md`` filter).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .history import SHORT, when

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

__all__ = ["TEMPLATES_DIR", "environment", "render", "show_value", "markdown_cell", "when"]


def show_value(value: Any) -> str:
    """A field value as an operator reads it: ``null``, ``30``, ``[business, enterprise]``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    text = str(value)
    if isinstance(value, str) and (not text or any(c.isspace() or c in ',"[]' for c in text)):
        return '"' + text.replace('"', '\\"') + '"'
    return text


def markdown_cell(value: Any) -> str:
    """Text safe inside a markdown table cell: pipes escaped, no line breaks, no HTML tags."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return text.replace("<", "&lt;")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment; add filters to it rather than building another."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"),
            default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["value"] = show_value
    env.filters["md"] = markdown_cell
    env.filters["short"] = lambda sha: str(sha)[:SHORT]
    env.filters["when"] = when
    return env


def render(template_name: str, **context: Any) -> str:
    """Render ``templates/<template_name>`` with ``context``."""
    return environment().get_template(template_name).render(**context)
