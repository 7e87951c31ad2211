"""Fault injection for publish tests: store wrappers that record, fail or die, around a real store."""

from __future__ import annotations

import os
import threading
from typing import Any

from flagops.errors import StorageError


class Wrapped:
    """A store that passes every call to ``inner``; subclasses intercept ``put``."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.url = inner.url

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, key: str, data: bytes, **kw: Any) -> str:
        return self.inner.put(key, data, **kw)


class Recording(Wrapped):
    """Records every put, in order: (key, bytes)."""

    def __init__(self, inner: Any):
        super().__init__(inner)
        self.puts: list[tuple[str, bytes]] = []
        self._mutex = threading.Lock()

    def put(self, key: str, data: bytes, **kw: Any) -> str:
        etag = self.inner.put(key, data, **kw)
        with self._mutex:
            self.puts.append((key, data))
        return etag


class FaultAfter(Wrapped):
    """After ``after`` puts whose key contains ``match``, the next such put runs ``fault`` instead.

    ``fault="die"`` ends the process at once (``os._exit(70)``, like a kill -9 between two
    uploads); ``"fail"`` raises :class:`StorageError` (the store refuses from then on); a
    callable runs and the put proceeds.
    """

    def __init__(self, inner: Any, after: int, fault: Any = "die", match: str = "/tenants/"):
        super().__init__(inner)
        self.after, self.fault, self.match = after, fault, match
        self.count = 0
        self._mutex = threading.Lock()

    def put(self, key: str, data: bytes, **kw: Any) -> str:
        if self.match in key:
            with self._mutex:
                self.count += 1
                hit = self.count > self.after
            if hit:
                if self.fault == "die":
                    os._exit(70)
                if self.fault == "fail":
                    raise StorageError(f"put {key}: injected failure")
                self.fault()
        return self.inner.put(key, data, **kw)


#: Run as ``python -c CRASH_SCRIPT OUT ENV TARGET ROOT N``: publish through FaultAfter(N, "die").
CRASH_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from faults import FaultAfter
from flagops.publish import PublishOptions, publish_environment
from flagops.storage import open_target
out, env, target, root, n = sys.argv[1:6]
store, prefix = open_target(target)
publish_environment(Path(out), env, FaultAfter(store, int(n)), prefix, root=Path(root),
                    options=PublishOptions(workers=1))
""".format(tests=os.path.dirname(os.path.abspath(__file__)))

