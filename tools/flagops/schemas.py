"""The JSON Schemas of the repository, and the vocabulary (plans, environments) they define."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Optional

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from .errors import FlagopsError

SCHEMA_FILES = ("flag", "tenants", "bundle", "manifest", "rules")
#: Schemas shipped with flagops, used when a repository has no schema/ of its own.
BUILTIN_SCHEMA_DIR = Path(__file__).resolve().parent.parent.parent / "schema"


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
        return Draft202012Validator(self.documents[name], registry=self.registry,
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
