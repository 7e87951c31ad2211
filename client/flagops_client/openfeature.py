"""An OpenFeature provider backed by :class:`FlagClient` (``pip install flagops-client[openfeature]``).

Boolean flags only, keyed by ``targeting_key`` = tenant slug; the evaluation context may carry
``id``, ``plan`` and ``partnerSlug`` so a tenant with no bundle yet is evaluated from the rules::

    from openfeature import api
    from flagops_client.openfeature import FlagopsProvider

    api.set_provider(FlagopsProvider("https://objects.example.eu/flags", environment="production",
                                     cache_dir="/var/cache/flagops"))
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from .client import FlagClient

__all__ = ["FlagopsProvider"]

_ATTRIBUTES = ("id", "plan", "partnerSlug")
_DECIDED = ("STATIC", "STALE", "TARGETING_MATCH")  # reasons where the value came from flagops


class FlagopsProvider(AbstractProvider):
    """Pass a :class:`FlagClient`, or the arguments to build one (the provider then owns it)."""

    def __init__(self, client_or_base_url: Union[FlagClient, str], **client_kwargs: Any) -> None:
        super().__init__()
        if isinstance(client_or_base_url, FlagClient):
            if client_kwargs:
                raise TypeError("pass either a FlagClient or the arguments for one, not both")
            self.client, self._owned = client_or_base_url, False
        else:
            self.client, self._owned = FlagClient(client_or_base_url, **client_kwargs), True

    def get_metadata(self) -> Metadata:
        return Metadata(name="flagops")

    def shutdown(self) -> None:
        if self._owned:
            self.client.close()

    def resolve_boolean_details(self, flag_key: str, default_value: bool,
                                evaluation_context: Optional[EvaluationContext] = None,
                                ) -> FlagResolutionDetails[bool]:
        ctx = evaluation_context or EvaluationContext()
        tenant = ctx.targeting_key
        if not tenant:
            return FlagResolutionDetails(default_value, ErrorCode.TARGETING_KEY_MISSING,
                                         "targeting_key (the tenant slug) is required", Reason.ERROR)
        attrs = ctx.attributes or {}
        attributes = {k: attrs[k] for k in _ATTRIBUTES if k in attrs} if "id" in attrs else None
        res = self.client.resolve(flag_key, tenant, default_value, attributes)
        error = ErrorCode(res.error_code) if res.error_code else None
        return FlagResolutionDetails(value=res.value, error_code=error,
                                     error_message=res.message if error else None,
                                     reason=Reason(res.reason),
                                     variant=("on" if res.value else "off") if res.reason in _DECIDED else None)

    # Only booleans are served: any other type answers the default with TYPE_MISMATCH.
    def _mismatch(self, default_value: Any) -> FlagResolutionDetails[Any]:
        return FlagResolutionDetails(default_value, ErrorCode.TYPE_MISMATCH,
                                     "flagops serves boolean flags only", Reason.ERROR)

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: Optional[EvaluationContext] = None,
                               ) -> FlagResolutionDetails[str]:
        return self._mismatch(default_value)

    def resolve_integer_details(self, flag_key: str, default_value: int,
                                evaluation_context: Optional[EvaluationContext] = None,
                                ) -> FlagResolutionDetails[int]:
        return self._mismatch(default_value)

    def resolve_float_details(self, flag_key: str, default_value: float,
                              evaluation_context: Optional[EvaluationContext] = None,
                              ) -> FlagResolutionDetails[float]:
        return self._mismatch(default_value)

    def resolve_object_details(self, flag_key: str, default_value: Union[Sequence[Any], Mapping[str, Any]],
                               evaluation_context: Optional[EvaluationContext] = None,
                               ) -> FlagResolutionDetails[Union[Sequence[Any], Mapping[str, Any]]]:
        return self._mismatch(default_value)
