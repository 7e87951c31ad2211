"""Checks for the documents the client reads: a fetched document replaces good flags only once
it passed every check here. Standard library only; mirrors schema/bundle.schema.json and
schema/rules.schema.json without needing a JSON Schema implementation.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from .evaluation import AXES, STATES

SCHEMA_VERSION = 1
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
KEY = re.compile(r"[a-z][a-z0-9_]{1,63}")
ENVIRONMENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

__all__ = ["DocumentError", "SCHEMA_VERSION", "check_bundle", "check_rules", "parse_bundle",
           "parse_rules", "valid_slug"]


class DocumentError(ValueError):
    """A fetched or cached document that must not replace the flags in use."""


def valid_slug(value: object) -> bool:
    return isinstance(value, str) and SLUG.fullmatch(value) is not None


def _load(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise DocumentError(f"not JSON ({exc})") from None


def _check_header(doc: Any, environment: str) -> None:
    if not isinstance(doc, dict):
        raise DocumentError("not a JSON object")
    version = doc.get("schemaVersion")
    # bool is an int subclass: `true` must not pass for 1.
    if type(version) is not int or version != SCHEMA_VERSION:
        raise DocumentError(f"schemaVersion {version!r}, expected {SCHEMA_VERSION}")
    if doc.get("environment") != environment:
        raise DocumentError(f"environment {doc.get('environment')!r}, expected {environment!r}")


def check_bundle(doc: Any, environment: str, tenant: str) -> dict[str, bool]:
    """The ``{key: bool}`` of a bundle object, or DocumentError."""
    _check_header(doc, environment)
    if doc.get("tenant") != tenant:
        raise DocumentError(f"tenant {doc.get('tenant')!r}, expected {tenant!r}")
    flags = doc.get("flags")
    if not isinstance(flags, dict):
        raise DocumentError("flags is not an object")
    for key, value in flags.items():
        if type(value) is not bool:
            raise DocumentError(f"flag {key!r} is {value!r}, not a boolean")
        if KEY.fullmatch(key) is None:
            raise DocumentError(f"flag key {key!r} is not a valid key")
    return flags


def parse_bundle(data: bytes, environment: str, tenant: str) -> dict[str, bool]:
    """Parse and check the bytes of ``<env>/tenants/<tenant>.json``."""
    return check_bundle(_load(data), environment, tenant)


def check_rules(doc: Any, environment: str) -> dict[str, dict[str, Any]]:
    """``{key: flag}`` of a rules object (each flag carrying its key), or DocumentError."""
    _check_header(doc, environment)
    flags = doc.get("flags")
    if not isinstance(flags, dict):
        raise DocumentError("flags is not an object")
    out: dict[str, dict[str, Any]] = {}
    for key, flag in flags.items():
        if KEY.fullmatch(key) is None:
            raise DocumentError(f"flag key {key!r} is not a valid key")
        if not isinstance(flag, dict) or flag.get("state") not in STATES:
            raise DocumentError(f"flag {key!r}: state missing or unknown")
        pct = flag.get("pct")
        if type(pct) is not int or not 0 <= pct <= 100:
            raise DocumentError(f"flag {key!r}: pct {pct!r} is not an integer 0..100")
        scope = flag.get("scope")
        if not isinstance(scope, dict):
            raise DocumentError(f"flag {key!r}: scope is not an object")
        for axis in AXES:
            values = scope.get(axis)
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise DocumentError(f"flag {key!r}: scope.{axis} is not a list of strings")
        out[key] = {"key": key, "state": flag["state"], "pct": pct,
                    "scope": {axis: list(scope[axis]) for axis in AXES}}
    return out


def parse_rules(data: bytes, environment: str) -> dict[str, dict[str, Any]]:
    """Parse and check the bytes of ``<env>/rules.json``."""
    return check_rules(_load(data), environment)


def rules_document(environment: str, flags: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The rules object back from checked flags (for the cache)."""
    return {"schemaVersion": SCHEMA_VERSION, "environment": environment,
            "flags": {k: {"state": f["state"], "pct": f["pct"], "scope": f["scope"]} for k, f in flags.items()}}
