"""flagops-client: read flagops bundles in services.

The evaluation semantics live in :mod:`flagops_client.evaluation`, shared with the pipeline.
:class:`FlagClient` answers from memory, refreshes in the background and survives outages.
"""

from .client import FlagClient, Resolution, Status
from .documents import DocumentError
from .evaluation import evaluate, evaluate_all, has_any_scope, in_rollout_bucket, matches_scope

__all__ = ["DocumentError", "FlagClient", "Resolution", "Status", "evaluate", "evaluate_all",
           "has_any_scope", "in_rollout_bucket", "matches_scope"]
