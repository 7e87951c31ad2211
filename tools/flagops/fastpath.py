"""The fast paths for large inventories, each exactly equal to what it shortcuts.

``fast_inventory`` reads YAML in the regular shape platform exports have without building a
node tree (the full parser reads anything else); ``tenant_columns`` checks parsed tenants
against what ``tenants.schema.json`` says without jsonschema (used only while that schema is
the one it mirrors: ``Schemas.fast_tenants_check``), and ``flag_fast_ok`` a flag against
``flag.schema.json`` (``Schemas.fast_flag_check``). Each check may refuse what is valid (the
schema then reports), never accept what is not. The fuzz tests compare them with the slow paths.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any, Callable, Optional

import yaml
from flagops_client.evaluation import AXES

__all__ = ["FlagVocabulary", "TenantColumns", "all_unique", "fast_inventory", "flag_fast_ok", "tenant_columns",
           "tenants_fast_ok"]


# One line of the regular shape platform exports have: ``- key: value`` starting a tenant,
# ``  key: value`` continuing it; values plain (one line, no indicator first), or quoted
# without escapes; an optional trailing comment.
_FAST_LINE = re.compile(
    r"(- |  )([A-Za-z][A-Za-z0-9_]*):[ ]+"
    r"(?:\"([^\"\\]*)\"|'([^']*)'|([^\s\-?:,\[\]{}#&*!|>'\"%@`][^\s#:]*(?:[ ]+[^\s#:]+)*))"
    r"(?:[ ]+#.*)?[ ]*"
)
# Plain scalars the YAML 1.2 core schema does not read as strings (see _Resolver).
_NOT_A_STRING = re.compile(
    r"true|True|TRUE|false|False|FALSE|~|null|Null|NULL"
    r"|[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


def fast_inventory(text: str) -> Optional[list[dict[str, Any]]]:
    """Read an inventory of the regular exported shape without building a YAML node tree.

    Returns None as soon as anything is outside that shape (flow style, anchors, escapes,
    numbers, nesting, duplicate keys, ...): the full parser then reads the file and reports
    its problems with positions. For what it accepts the result equals the full parser's.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    # Other line breaks YAML knows, and characters it refuses: the full parser decides.
    if "\r" in text or "\x85" in text or "\u2028" in text or "\u2029" in text \
            or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return None
    items: list[dict[str, Any]] = []
    current: Optional[dict[str, Any]] = None
    match = _FAST_LINE.fullmatch
    not_a_string = _NOT_A_STRING.fullmatch
    for line in text.split("\n"):
        m = match(line)
        if m is None:
            stripped = line.strip(" ")
            if not stripped or stripped.startswith("#"):
                continue
            return None
        lead, key, dq, sq, plain = m.groups()
        if plain is not None:
            if plain[0] in "-+.0123456789tTfFnN~" and not_a_string(plain):
                return None
            value = plain
        else:
            value = dq if dq is not None else sq
        if lead == "- ":
            current = {key: value}
            items.append(current)
        elif current is None or key in current:
            return None
        else:
            current[key] = value
    return items or None


_TENANT_FIELDS = frozenset({"id", "slug", "plan", "partnerSlug", "name"})


class _Missing:
    """Stands for an absent optional field in a column (its type is no JSON type)."""


_MISSING = _Missing()


@dataclass(frozen=True)
class TenantColumns:
    """One inventory's fields as columns (``partners``: None where absent), read once.

    Made by the fast check; the validation and the compiler's tenant index read them instead
    of walking 100,000 tenant mappings again.
    """

    ids: list[str]
    slugs: list[str]
    plans: list[str]
    partners: list[Optional[str]]


def tenant_columns(data: Any, plans: set[str], slug_re: re.Pattern[str]) -> Optional[TenantColumns]:
    """The columns of tenants that pass a check mirroring tenants.schema.json, else None.

    So 100,000 valid tenants skip jsonschema. One pass per check, each a C-level map (no
    Python code per tenant).
    """
    if not isinstance(data, list):
        return None
    if not set(map(type, data)) <= {dict} or not set().union(*data) <= _TENANT_FIELDS:
        return None
    try:
        ids, slugs, tenant_plans = (list(map(itemgetter(name), data)) for name in ("id", "slug", "plan"))
    except KeyError:
        return None
    if not set(map(type, ids)) <= {str} or not all(ids):
        return None
    if not set(map(type, tenant_plans)) <= {str} or not set(tenant_plans) <= plans:
        return None
    partners = list(map(dict.get, data, repeat("partnerSlug"), repeat(_MISSING)))
    if not set(map(type, slugs)) <= {str} or not set(map(type, partners)) <= {str, _Missing}:
        return None
    given = list(filter(str.__instancecheck__, partners))
    if not all(map(slug_re.fullmatch, slugs)) or not all(map(slug_re.fullmatch, given)):
        return None
    if not set(map(type, map(dict.get, data, repeat("name"), repeat(_MISSING)))) <= {str, _Missing}:
        return None
    if len(given) != len(partners):
        partners = [None if p is _MISSING else p for p in partners]
    return TenantColumns(ids, slugs, tenant_plans, partners)


def tenants_fast_ok(data: Any, plans: set[str], slug_re: re.Pattern[str]) -> bool:
    """True when the tenants pass the check of :func:`tenant_columns`."""
    return tenant_columns(data, plans, slug_re) is not None


def all_unique(columns: TenantColumns) -> bool:
    """True when the tenants repeat no id and no slug."""
    return len(set(columns.ids)) == len(columns.ids) and len(set(columns.slugs)) == len(columns.slugs)


@dataclass(frozen=True)
class FlagVocabulary:
    """What ``flag.schema.json`` leaves to its ``$defs``: the plans, environments, slug pattern."""

    plans: frozenset[str]
    environments: frozenset[str]
    slug: Callable[[str], Any]  # the slug pattern's search, as the schema validator applies it


_FLAG_FIELDS = frozenset({"key", "description", "owner", "expires", "state", "pct", "scope"})
_STATES = frozenset({"off", "on", "targeted", "rollout"})
_AXES = frozenset(AXES)
# The patterns of the mirrored schema, anchored as JSON Schema reads them (``$``: the end).
_KEY = re.compile(r"[a-z][a-z0-9_]{1,63}").fullmatch
_NON_SPACE = re.compile(r"\S").search
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch


def _slugs_ok(values: Any, ok: Callable[[str], Any]) -> bool:
    return (type(values) is list and set(map(type, values)) <= {str} and len(set(values)) == len(values)
            and all(map(ok, values)))


def flag_fast_ok(flag: Any, vocabulary: FlagVocabulary) -> bool:
    """True when ``flag`` passes ``flag.schema.json`` (the shape ``Schemas.fast_flag_check`` names).

    False also for some valid flags (a ``killed`` block, whose timestamp format jsonschema
    decides): the schema validator then gives the answer.
    """
    if type(flag) is not dict or not _FLAG_FIELDS.issuperset(flag):
        return False
    key, description, state = flag.get("key"), flag.get("description"), flag.get("state")
    if type(key) is not str or not _KEY(key) or type(state) is not str or state not in _STATES:
        return False
    if type(description) is not str or not _NON_SPACE(description):
        return False
    if "owner" in flag and (type(flag["owner"]) is not str or not flag["owner"]):
        return False
    if "expires" in flag:
        expires = flag["expires"]
        if type(expires) is not str or not _DATE(expires):
            return False
        try:  # the "date" format: a real day
            _dt.date.fromisoformat(expires)
        except ValueError:
            return False
    if "pct" in flag:
        pct = flag["pct"]
        if type(pct) is not int or not 0 <= pct <= 100:
            return False
    elif state == "rollout":
        return False
    if "scope" not in flag:
        return True
    scope = flag["scope"]
    if type(scope) is not dict or not _AXES.issuperset(scope):
        return False
    return (_slugs_ok(scope.get("plans", []), vocabulary.plans.__contains__)
            and _slugs_ok(scope.get("environments", []), vocabulary.environments.__contains__)
            and _slugs_ok(scope.get("tenantSlugs", []), vocabulary.slug)
            and _slugs_ok(scope.get("partnerSlugs", []), vocabulary.slug))
