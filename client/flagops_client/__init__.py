"""flagops-client: read flagops bundles in services.

The evaluation semantics live in :mod:`flagops_client.evaluation`, shared with the pipeline.
:class:`FlagClient` answers from memory, refreshes in the background and survives outages.
"""

from typing import TYPE_CHECKING, Any

from .evaluation import evaluate, evaluate_all, has_any_scope, in_rollout_bucket, matches_scope

if TYPE_CHECKING:
    from .client import FlagClient, Resolution, Status
    from .documents import DocumentError

#: Imported on first use: the pipeline needs only the evaluation, not the client.
_LAZY = {"FlagClient": "client", "Resolution": "client", "Status": "client", "DocumentError": "documents"}


def __getattr__(name: str) -> Any:
    from importlib import import_module

    module = _LAZY.get(name)
    if module is not None:
        value = getattr(import_module(f"{__name__}.{module}"), name)
    else:  # a submodule (``flagops_client.client``), as when the package imported them all
        try:
            value = import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

__all__ = ["DocumentError", "FlagClient", "Resolution", "Status", "evaluate", "evaluate_all",
           "has_any_scope", "in_rollout_bucket", "matches_scope"]
