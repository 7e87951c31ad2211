"""flagops-client: read flagops bundles in services.

The evaluation semantics live in :mod:`flagops_client.evaluation`, shared with the pipeline.
"""

from .evaluation import evaluate, evaluate_all, has_any_scope, in_rollout_bucket, matches_scope

__all__ = ["evaluate", "evaluate_all", "has_any_scope", "in_rollout_bucket", "matches_scope"]
