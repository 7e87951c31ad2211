"""Moved to :mod:`flagops.git`; kept until its last importers switch."""

from .git import TRACKED_PATHS, flags_revision

__all__ = ["TRACKED_PATHS", "flags_revision"]
