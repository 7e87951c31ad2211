"""The fast paths for large inventories, each exactly equal to what it shortcuts.

``fast_inventory`` reads YAML in the regular shape platform exports have without building a
node tree (the full parser reads anything else); ``tenants_fast_ok`` checks parsed tenants
against what ``tenants.schema.json`` says without jsonschema (used only while that schema is
the one it mirrors: ``Schemas.fast_tenants_check``). The fuzz tests compare both with the
slow paths.
"""

from __future__ import annotations

import re
from operator import itemgetter, methodcaller
from typing import Any, Optional

import yaml

__all__ = ["all_unique", "fast_inventory", "tenants_fast_ok"]


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


def tenants_fast_ok(data: Any, plans: set[str], slug_re: re.Pattern[str]) -> bool:
    """A quick check mirroring tenants.schema.json, so 100,000 valid tenants skip jsonschema."""
    if not isinstance(data, list):
        return False
    # One pass per property, each a C-level map (no Python code per tenant), which matters
    # at 100,000 tenants.
    allowed = {"id", "slug", "plan", "partnerSlug", "name"}
    if not set(map(type, data)) <= {dict} or not all(map(allowed.issuperset, data)):
        return False
    ids = list(map(methodcaller("get", "id"), data))
    if not set(map(type, ids)) <= {str} or not all(ids):
        return False
    tenant_plans = list(map(methodcaller("get", "plan"), data))
    if not set(map(type, tenant_plans)) <= {str} or not set(tenant_plans) <= plans:
        return False
    partners = map(itemgetter("partnerSlug"), filter(methodcaller("__contains__", "partnerSlug"), data))
    values = list(map(methodcaller("get", "slug"), data)) + list(partners)
    if not set(map(type, values)) <= {str} or not all(map(slug_re.fullmatch, values)):
        return False
    return set(map(type, map(itemgetter("name"), filter(methodcaller("__contains__", "name"), data)))) <= {str}


def all_unique(data: Any) -> bool:
    """True when ``data`` (tenants that passed the fast check) repeats no id and no slug."""
    ids = list(map(itemgetter("id"), data))
    slugs = list(map(itemgetter("slug"), data))
    return len(set(ids)) == len(ids) and len(set(slugs)) == len(slugs)
