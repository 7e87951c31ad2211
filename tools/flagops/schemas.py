"""The JSON Schemas of the repository, and the vocabulary (plans, environments) they define."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from .errors import FlagopsError

if TYPE_CHECKING:  # jsonschema loads with the first validator: a compile imports it beside its hashing
    from jsonschema import Draft202012Validator, ValidationError
    from referencing import Registry

    from .fastpath import FlagVocabulary

SCHEMA_FILES = ("flag", "tenants", "bundle", "manifest", "rules")
#: Schemas shipped with flagops, used when a repository has no schema/ of its own.
BUILTIN_SCHEMA_DIR = Path(__file__).resolve().parent.parent.parent / "schema"


@lru_cache(maxsize=None)
def ecma_pattern(pattern: str) -> "re.Pattern[str]":
    """``pattern`` with JSON Schema's (ECMA-262) meaning of ``$``: the end of the string.

    Python's ``$`` also matches before a final newline, which would let ``"acme\\n"`` pass as
    a slug (a slug becomes a file name); outside a character class it becomes ``\\Z``.
    """
    out, in_class, i = [], False, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "$":
            ch = r"\Z"
        out.append(ch)
        i += 1
    return re.compile("".join(out))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator["ValidationError"]:
    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        from jsonschema import ValidationError

        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _is_integer(checker: Any, instance: Any) -> bool:
    # An integer as written: YAML reads 5.0, 1e2 and 012 as floats, which JSON Schema would
    # otherwise accept as the integers 5, 100 and 12.
    return isinstance(instance, int) and not isinstance(instance, bool)


@lru_cache(maxsize=None)
def validator_class() -> Any:
    """Draft 2020-12 with ECMA-262 anchors for ``pattern`` (and so for ``propertyNames``), and
    integers only as written."""
    from jsonschema import Draft202012Validator, validators

    return validators.extend(Draft202012Validator, {"pattern": _pattern},
                             type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer))


#: What ``tenants.schema.json`` says, minus annotations, when the fast inventory check in
#: validation applies: that check mirrors exactly this (the slug pattern and the plans are read
#: from ``flag.schema.json``). Any other tenants schema is checked by jsonschema alone.
FAST_TENANTS_SHAPE: dict[str, Any] = {
    "type": "array",
    "items": {"$ref": "#/$defs/tenant"},
    "$defs": {"tenant": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "slug", "plan"],
        "properties": {
            "id": {"type": "string", "minLength": 1},
            "slug": {"$ref": "flag.schema.json#/$defs/slug"},
            "plan": {"$ref": "flag.schema.json#/$defs/plan"},
            "partnerSlug": {"$ref": "flag.schema.json#/$defs/slug"},
            "name": {"type": "string"},
        },
    }},
}
#: What ``flag.schema.json`` says, minus annotations and the plan, environment and slug
#: ``$defs`` (read from the schema: see :class:`flagops.fastpath.FlagVocabulary`), when the
#: fast flag check applies. Any other flag schema is checked by jsonschema alone.
FAST_FLAG_SHAPE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["key", "description", "state"],
    "properties": {
        "key": {"type": "string", "pattern": "^[a-z][a-z0-9_]{1,63}$"},
        "description": {"type": "string", "minLength": 1, "pattern": "\\S"},
        "owner": {"type": "string", "minLength": 1},
        "expires": {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        "state": {"enum": ["off", "on", "targeted", "rollout"]},
        "pct": {"type": "integer", "minimum": 0, "maximum": 100},
        "scope": {"$ref": "#/$defs/scope"},
        "killed": {"$ref": "#/$defs/killed"},
    },
    "if": {"properties": {"state": {"const": "rollout"}}, "required": ["state"]},
    "then": {"properties": {"pct": True}, "required": ["pct"]},
    "$defs": {
        "killed": {
            "type": "object",
            "additionalProperties": False,
            "required": ["at", "by", "state"],
            "properties": {
                "reason": {"type": "string"},
                "at": {"type": "string", "format": "date-time"},
                "by": {"type": "string", "minLength": 1},
                "state": {"enum": ["off", "on", "targeted", "rollout"]},
                "pct": {"type": "integer", "minimum": 0, "maximum": 100},
            },
        },
        "scope": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                axis: {"type": "array", "uniqueItems": True, "items": {"$ref": f"#/$defs/{item}"}}
                for axis, item in (("plans", "plan"), ("tenantSlugs", "slug"), ("partnerSlugs", "slug"),
                                   ("environments", "environment"))
            },
        },
    },
}
_VOCABULARY = ("plan", "environment", "slug")
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "examples", "default"})
_NESTED_ANNOTATIONS = _ANNOTATIONS - {"$schema", "$id"}


#: Keywords whose value maps names to schemas, and keywords whose value is data (not a schema).
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "dependentSchemas"})
_DATA = frozenset({"enum", "const", "required"})


def schema_shape(node: Any, *, root: bool = True) -> Any:
    """A schema without annotations, each ``$ref`` reduced to its file name and fragment.

    Property names are kept (a property called ``description`` is no annotation), and so is
    data: the values of ``enum``, ``const`` and ``required``. ``$id`` and ``$schema`` go only at
    the root: below it they change what a ``$ref`` names or how a part is read.
    """
    if isinstance(node, dict):
        dropped = _ANNOTATIONS if root else _NESTED_ANNOTATIONS
        out = {}
        for k, v in node.items():
            if k in dropped:
                continue
            if k == "$ref" and isinstance(v, str):
                out[k] = _ref_name(v)
            elif k in _SCHEMA_MAPS and isinstance(v, dict):
                out[k] = {name: schema_shape(sub, root=False) for name, sub in v.items()}
            elif k in _DATA:
                out[k] = v
            else:
                out[k] = schema_shape(v, root=False)
        return out
    if isinstance(node, list):
        return [schema_shape(v, root=False) for v in node]
    return node


def _is_enum(shape: Any) -> bool:
    return isinstance(shape, dict) and set(shape) == {"enum"} and isinstance(shape["enum"], list)


def _ref_name(ref: str) -> str:
    target, _, fragment = ref.partition("#")
    return f"{target.rsplit('/', 1)[-1]}#{fragment}"


@dataclass
class Schemas:
    """The loaded schemas of one repository."""

    documents: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, directory: Optional[Path] = None) -> "Schemas":
        """Read ``<name>.schema.json`` files from ``directory``, else the built-in copies."""
        docs: dict[str, dict[str, Any]] = {}
        for name in SCHEMA_FILES:
            path = None
            for base in (directory, BUILTIN_SCHEMA_DIR):
                if base is not None and (base / f"{name}.schema.json").is_file():
                    path = base / f"{name}.schema.json"
                    break
            if path is None:
                raise FlagopsError(f"schema {name}.schema.json not found",
                                   hint="run from the repository root or pass --root")
            try:
                docs[name] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise FlagopsError(f"{path}: cannot read the schema: {exc}") from exc
        return cls(docs)

    @cached_property
    def registry(self) -> "Registry":
        from referencing import Registry, Resource

        resources = []
        for doc in self.documents.values():
            resource = Resource.from_contents(doc)
            resources.append((doc["$id"], resource))
        return Registry().with_resources(resources)

    def validator(self, name: str) -> "Draft202012Validator":
        from jsonschema import FormatChecker

        return validator_class()(self.documents[name], registry=self.registry,  # type: ignore[no-any-return]
                                 format_checker=FormatChecker())

    @cached_property
    def flag_validator(self) -> "Draft202012Validator":
        return self.validator("flag")

    @cached_property
    def tenants_validator(self) -> "Draft202012Validator":
        return self.validator("tenants")

    @property
    def plans(self) -> list[str]:
        return list(self.documents["flag"]["$defs"]["plan"]["enum"])

    @property
    def environments(self) -> list[str]:
        return list(self.documents["flag"]["$defs"]["environment"]["enum"])

    @property
    def slug_pattern(self) -> str:
        return str(self.documents["flag"]["$defs"]["slug"]["pattern"])

    @cached_property
    def fast_flag_check(self) -> Optional["FlagVocabulary"]:
        """The vocabulary of the fast flag check, or None when this flag schema is not the one it mirrors."""
        from .fastpath import FlagVocabulary

        doc = self.documents["flag"]
        defs = doc.get("$defs")
        if not isinstance(defs, dict):
            return None
        rest = {**doc, "$defs": {k: v for k, v in defs.items() if k not in _VOCABULARY}}
        plan, env, slug = (schema_shape(defs.get(name), root=False) for name in _VOCABULARY)
        if schema_shape(rest) != FAST_FLAG_SHAPE or not (_is_enum(plan) and _is_enum(env)):
            return None
        if not (isinstance(slug, dict) and set(slug) == {"type", "pattern"} and slug["type"] == "string"
                and isinstance(slug["pattern"], str)):
            return None
        try:
            slug_search = ecma_pattern(slug["pattern"]).search
        except re.error:
            return None
        # Only the strings of an enum: the fast check refuses anything else (jsonschema decides it).
        return FlagVocabulary(frozenset(p for p in plan["enum"] if isinstance(p, str)),
                              frozenset(e for e in env["enum"] if isinstance(e, str)), slug_search)

    @cached_property
    def fast_tenants_check(self) -> bool:
        """True when the tenants schema is the one validation's fast inventory check mirrors."""
        defs = self.documents["flag"].get("$defs", {})
        slug, plan = schema_shape(defs.get("slug"), root=False), schema_shape(defs.get("plan"), root=False)
        return (schema_shape(self.documents["tenants"]) == FAST_TENANTS_SHAPE
                and isinstance(slug, dict) and set(slug) == {"type", "pattern"} and slug["type"] == "string"
                and isinstance(plan, dict) and set(plan) == {"enum"}
                and all(isinstance(p, str) for p in plan["enum"]))
