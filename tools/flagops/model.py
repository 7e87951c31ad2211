"""Flags and tenants as typed, frozen values, parsed once from documents that passed validation.

Validation works on the documents as read (plain data with positions); everything after it
(compile, plan, edits, listings) reads these instead, so "a missing scope is an empty one" and
"pct is 0 unless given" are decided here, once. ``Flag.as_rule()`` is the normalised form the
evaluator and ``rules.json`` use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterator, Literal, Mapping, NamedTuple, Optional, Sequence

from flagops_client.evaluation import AXES, STATES, evaluate

__all__ = ["AXES", "Flag", "FlagState", "Scope", "Tenant", "freeze", "thaw"]

FlagState = Literal["off", "on", "targeted", "rollout"]
#: Definition fields in their canonical order (the ``fmt`` layout).
FIELDS = ("key", "description", "owner", "expires", "state", "pct", "scope", "killed")


def freeze(value: Any) -> Any:
    """A read-only deep copy: mappings become ``MappingProxyType``, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The plain-data (JSON-ready) copy of a :func:`freeze`-d value."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings, not {value!r}")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class Scope(Mapping[str, tuple[str, ...]]):
    """Who a flag applies to: the four axes, each a tuple (empty when not given).

    It is also a read-only mapping from the schema's axis names (``plans``, ``tenantSlugs``,
    ``partnerSlugs``, ``environments``) to those tuples, so the client's ``matches_scope`` and
    ``has_any_scope`` take it as it is.
    """

    plans: tuple[str, ...] = ()
    tenant_slugs: tuple[str, ...] = ()
    partner_slugs: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: Optional[Mapping[str, Any]]) -> "Scope":
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"scope must be a mapping, not {data!r}")
        return cls(*(_strings(data.get(axis), f"scope.{axis}") for axis in AXES))

    def __getitem__(self, axis: str) -> tuple[str, ...]:
        try:
            return getattr(self, _ATTRS[axis])  # type: ignore[no-any-return]
        except KeyError:
            raise KeyError(axis) from None

    def __iter__(self) -> Iterator[str]:
        return iter(AXES)

    def __len__(self) -> int:
        return len(AXES)

    def __bool__(self) -> bool:
        """True when at least one axis is non-empty (``has_any_scope``)."""
        return bool(self.plans or self.tenant_slugs or self.partner_slugs or self.environments)

    def as_dict(self) -> dict[str, list[str]]:
        """Every axis as a list: the ``scope`` of ``rules.json``."""
        return {axis: list(self[axis]) for axis in AXES}

    def written(self) -> dict[str, list[str]]:
        """Only the non-empty axes, as a flag file would hold them."""
        return {axis: list(self[axis]) for axis in AXES if self[axis]}


_ATTRS = dict(zip(AXES, ("plans", "tenant_slugs", "partner_slugs", "environments")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Flag:
    """One flag definition. ``pct`` is None when the file has none (see :attr:`rollout_pct`)."""

    key: str
    description: str
    state: FlagState
    owner: Optional[str] = None
    expires: Optional[str] = None  # YYYY-MM-DD as written
    pct: Optional[int] = None
    scope: Scope = field(default_factory=Scope)
    #: The kill record (reason, when, who, the state and pct before), read-only; None if never killed.
    killed: Optional[Mapping[str, Any]] = field(default=None, hash=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, key: Optional[str] = None) -> "Flag":
        """The flag of a validated definition; ``key`` (the file stem) is used when it has none.

        Raises ValueError for data that validation would have refused.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a flag must be a mapping, not {data!r}")
        flag_key = data.get("key", key)
        state = data.get("state")
        pct = data.get("pct")
        if not isinstance(flag_key, str):
            raise ValueError(f"key must be a string, not {flag_key!r}")
        if state not in STATES:
            raise ValueError(f"{flag_key}: state must be one of {', '.join(STATES)}, not {state!r}")
        if pct is not None and (type(pct) is not int or not 0 <= pct <= 100):
            raise ValueError(f"{flag_key}: pct must be an integer 0..100, not {pct!r}")
        if state == "rollout" and pct is None:
            raise ValueError(f"{flag_key}: a rollout needs a pct")
        for name in ("description", "owner", "expires"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise ValueError(f"{flag_key}: {name} must be a string, not {data[name]!r}")
        killed = data.get("killed")
        if killed is not None and not isinstance(killed, Mapping):
            raise ValueError(f"{flag_key}: killed must be a mapping, not {killed!r}")
        return cls(key=flag_key, description=data.get("description") or "", state=state,
                   owner=data.get("owner"), expires=data.get("expires"), pct=pct,
                   scope=Scope.from_mapping(data.get("scope")),
                   killed=freeze(killed) if killed is not None else None)

    @property
    def rollout_pct(self) -> int:
        """The pct that evaluation uses: as written, 0 when absent."""
        return self.pct or 0

    @property
    def has_scope(self) -> bool:
        return bool(self.scope)

    def as_rule(self) -> dict[str, Any]:
        """``{"state", "pct", "scope"}`` with every axis: one entry of ``rules.json``.

        Two flags with equal rules evaluate the same for every tenant.
        """
        return {"state": self.state, "pct": self.rollout_pct, "scope": self.scope.as_dict()}

    def evaluate(self, tenant: Mapping[str, Any], environment: str) -> bool:
        """The flag's value for one tenant (a mapping with ``id``, ``slug``, ``plan``, ...)."""
        return evaluate({"key": self.key, **self.as_rule()}, tenant, environment)

    def to_dict(self) -> dict[str, Any]:
        """The definition as a flag file holds it: fields in canonical order, unset ones left out."""
        out: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(self, name)
            if name == "scope":
                value = value.written() or None
            elif name == "killed" and value is not None:
                value = thaw(value)
            if value is not None and (name != "description" or value):
                out[name] = value
        return out


class Tenant(NamedTuple):
    """One tenant of an inventory (a tuple: 100,000 of them are cheap to build)."""

    id: str
    slug: str
    plan: str
    partner_slug: Optional[str] = None
    name: Optional[str] = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "Tenant":
        """The tenant of a validated inventory entry; raises ValueError otherwise."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a tenant must be a mapping, not {data!r}")
        try:
            tenant = cls(data["id"], data["slug"], data["plan"], data.get("partnerSlug"), data.get("name"))
        except KeyError as exc:
            raise ValueError(f"a tenant needs {exc.args[0]!r}") from None
        if not all(isinstance(v, str) for v in tenant[:3]) or not all(
                v is None or isinstance(v, str) for v in tenant[3:]):
            raise ValueError(f"tenant fields must be strings: {dict(data)!r}")
        return tenant

    @classmethod
    def many(cls, data: Sequence[Mapping[str, Any]]) -> tuple["Tenant", ...]:
        """Every tenant of a validated inventory, in order."""
        return tuple(cls.from_mapping(t) for t in data)

    def as_mapping(self) -> dict[str, str]:
        """The inventory form (``partnerSlug``, ``name`` only when set), as the evaluator reads it."""
        out = {"id": self.id, "slug": self.slug, "plan": self.plan}
        if self.partner_slug is not None:
            out["partnerSlug"] = self.partner_slug
        if self.name is not None:
            out["name"] = self.name
        return out
