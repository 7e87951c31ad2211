"""Moved to :mod:`flagops.git`; kept until its last importers switch."""

from .git import GitSource, resolve_revision

__all__ = ["GitSource", "resolve_revision"]
