"""The JSON Schemas of the repository, and the vocabulary (plans, environments) they define."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Iterator, Optional

from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from referencing import Registry, Resource

from .errors import FlagopsError

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


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


#: Draft 2020-12 with ECMA-262 anchors for ``pattern`` (and so for ``propertyNames``).
Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})


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
    def registry(self) -> Registry:
        resources = []
        for doc in self.documents.values():
            resource = Resource.from_contents(doc)
            resources.append((doc["$id"], resource))
        return Registry().with_resources(resources)

    def validator(self, name: str) -> Draft202012Validator:
        return Validator(self.documents[name], registry=self.registry,  # type: ignore[no-any-return]
                         format_checker=FormatChecker())

    @cached_property
    def flag_validator(self) -> Draft202012Validator:
        return self.validator("flag")

    @cached_property
    def tenants_validator(self) -> Draft202012Validator:
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
