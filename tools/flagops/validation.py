"""Validate a loaded project: the JSON Schema first, then the rules a schema cannot express.

Every problem is collected (never only the first) with its file, line and column, so one run
of ``flagops validate`` shows an operator everything to fix.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import unicodedata
from operator import methodcaller
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional

from flagops_client.evaluation import AXES, has_any_scope

from .fastpath import all_unique, flag_fast_ok, tenant_columns
from .model import Flag
from .loading import FLAGS_DIR, TENANTS_DIR, Document, FsSource, Inventory, JsonPath, Project, SCHEMA_DIR, load_override, load_project, read_tenants_source
from .problems import Problem, Result
from .schemas import Schemas
from .suggest import did_you_mean

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

__all__ = ["Problem", "Result", "Validation", "load_repository", "validate_project", "validate_repository", "did_you_mean"]


def _field(at: Iterable[Any]) -> str:
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the document"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # quoted, with any control character escaped
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return str(value)


_JSON_TYPES = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
               int: "an integer", float: "a number", type(None): "null"}


_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}

# Keyword -> sentence; {field}, {value} (shown) and {expected} are filled in.
_SIMPLE_MESSAGES = {
    "maximum": "{field} {value} is above the maximum of {expected}",
    "minimum": "{field} {value} is below the minimum of {expected}",
    "uniqueItems": "{field} lists the same value more than once; keep each once",
    "format": "{field} {value} is not a valid {expected} (use YYYY-MM-DD)",
    "minItems": "{field} needs at least {expected} item(s)",
}


def _type_message(field: str, expected: object, value: object) -> str:
    wanted = expected if isinstance(expected, list) else [expected]
    got = _JSON_TYPES.get(type(value), type(value).__name__)
    hint = ""
    if "string" in wanted and isinstance(value, (int, float)) and not isinstance(value, bool):
        hint = " (quote it)"
    elif "integer" in wanted and isinstance(value, float) and value.is_integer():
        hint = f" (write the digits only: {int(value)})"
    return f"{field} must be {' or '.join(_TYPE_NAMES.get(w, w) for w in wanted)}, not {got}{hint}"


def _schema_message(error: ValidationError) -> str:
    """A sentence an operator understands, instead of jsonschema's repr-based text."""
    field = _field(error.absolute_path)
    kind, expected, value = error.validator, error.validator_value, error.instance
    if kind in _SIMPLE_MESSAGES:
        return _SIMPLE_MESSAGES[kind].format(field=field, value=_show(value), expected=expected)
    if kind == "type":
        return _type_message(field, expected, value)
    if kind == "enum":
        return f"{field} {_show(value)} is not one of: {', '.join(map(str, expected))}"
    if kind == "const":
        return f"{field} must be {_show(expected)}, not {_show(value)}"
    if kind == "pattern":
        if isinstance(value, str) and not value.strip():
            return f"{field} must not be blank"
        return f"{field} {_show(value)} does not match the pattern {expected}"
    if kind == "minLength":
        return f"{field} must not be empty" if expected == 1 else f"{field} needs at least {expected} character(s)"
    return f"{field}: {error.message}"


def schema_problems(doc: Document, validator: Draft202012Validator) -> list[Problem]:
    """Map every schema error of ``doc`` to a Problem at the offending line."""
    problems: list[Problem] = []
    missing_reported: set[tuple[JsonPath, str]] = set()
    errors = list(validator.iter_errors(doc.data))
    # A value that already breaks its pattern or type needs no second "not a valid date".
    flagged = {tuple(e.absolute_path) for e in errors if e.validator != "format"}
    for error in errors:
        at = tuple(error.absolute_path)
        if error.validator == "format" and at in flagged:
            continue
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
            for key in error.instance:
                if key in allowed or any(p.search(key) for p in patterns):
                    continue
                line, col = doc.locate(at + (key,), key=True)
                where = f" in {_field(at)}" if at else ""
                problems.append(Problem(
                    doc.path, line, col, "schema",
                    f'unknown field {_show(key)}{where}{did_you_mean(key, allowed)}; '
                    f"allowed: {', '.join(allowed)}"))
            continue
        if error.validator == "required" and isinstance(error.instance, dict):
            line, col = doc.locate(at)
            for name in error.validator_value:
                # jsonschema yields one error per missing property: report each once.
                if name not in error.instance and (at, name) not in missing_reported:
                    missing_reported.add((at, name))
                    why = " (a rollout needs a percentage)" if name == "pct" else ""
                    where = f" in {_field(at)}" if at else ""
                    problems.append(Problem(doc.path, line, col, "schema",
                                            f'missing required field "{name}"{where}{why}'))
            continue
        line, col = doc.locate(at)
        problems.append(Problem(doc.path, line, col, "schema", _schema_message(error)))
    return problems


# --------------------------------------------------------------------------- inventories


def _not_nfc(doc: Document) -> list[Problem]:
    """Ids and slugs must be NFC: the rollout hashes the id's bytes, and "é" has two spellings."""
    if not isinstance(doc.data, list):
        return []
    if doc.text and doc.text.isascii() and "\\" not in doc.text:
        return []  # ASCII throughout and no escapes: every string is ASCII, hence NFC
    values = [(i, f, t[f]) for i, t in enumerate(doc.data) if type(t) is dict
              for f in ("id", "slug", "partnerSlug") if type(t.get(f)) is str and not t[f].isascii()]
    problems = []
    for i, field, value in values:
        if not unicodedata.is_normalized("NFC", value):
            line, col = doc.locate((i, field))
            problems.append(Problem(doc.path, line, col, "not-nfc",
                                    f"tenant {field} {_show(value)} is not in Unicode NFC; the same "
                                    f"characters in NFC are {_show(unicodedata.normalize('NFC', value))} "
                                    "(export ids and slugs NFC-normalised)"))
    return problems


def inventory_problems(doc: Document, schemas: Schemas, inventory: Optional[Inventory] = None) -> list[Problem]:
    """Schema and duplicate problems of one inventory (its columns kept on ``inventory`` when regular)."""
    pattern = schemas.slug_pattern.lstrip("^").rstrip("$")
    problems: list[Problem] = []
    columns = (tenant_columns(doc.data, set(schemas.plans), re.compile(pattern))
               if schemas.fast_tenants_check else None)
    problems.extend(_not_nfc(doc))
    if columns is None:
        problems = schema_problems(doc, schemas.tenants_validator)
        if not isinstance(doc.data, list):
            return problems or [Problem(doc.path, 1, 1, "schema", "the inventory must be a list of tenants")]
    elif all_unique(columns):  # the usual case, checked without a loop per tenant
        if inventory is not None:
            inventory.columns = columns
        return problems
    # Duplicates are reported even next to schema errors: one run shows everything.
    seen_ids: dict[str, int] = {}
    seen_slugs: dict[str, int] = {}
    for i, tenant in enumerate(doc.data):
        if not isinstance(tenant, dict):
            continue
        for field, seen in (("id", seen_ids), ("slug", seen_slugs)):
            value = tenant.get(field)
            if not isinstance(value, str):
                continue
            if value in seen:
                line, col = doc.locate((i, field))
                first = doc.locate((seen[value], field))[0]
                problems.append(Problem(doc.path, line, col, f"duplicate-tenant-{field}",
                                        f'tenant {field} {_show(value)} is already used on line {first}; '
                                        f"every tenant needs its own {field}"))
            else:
                seen[value] = i
    return problems


# --------------------------------------------------------------------------- flags


def flag_problems(stem: str, doc: Document, schemas: Schemas, known_tenants: set[str],
                  known_partners: set[str], unknown_severity: str, today: _dt.date) -> list[Problem]:
    flag = doc.data
    vocabulary = schemas.fast_flag_check
    problems = [] if vocabulary and flag_fast_ok(flag, vocabulary) else schema_problems(doc, schemas.flag_validator)
    key = flag.get("key")
    if isinstance(key, str) and key != stem:
        line, col = doc.locate(("key",))
        problems.append(Problem(doc.path, line, col, "key-filename",
                                f'key {_show(key)} does not match the file name {stem}.yaml; '
                                f"rename the file to {key}.yaml or set key: {stem}"))

    scope = flag.get("scope") if isinstance(flag.get("scope"), dict) else {}
    slug_re = re.compile(schemas.slug_pattern)
    for axis, known, what in (("tenantSlugs", known_tenants, "tenant"),
                              ("partnerSlugs", known_partners, "partner")):
        values = scope.get(axis)
        if not isinstance(values, list):
            continue
        for i, slug in enumerate(values):
            # A malformed slug already has its schema error; "unknown" would only repeat it.
            if isinstance(slug, str) and slug not in known and slug_re.fullmatch(slug):
                line, col = doc.locate(("scope", axis, i))
                problems.append(Problem(doc.path, line, col, f"unknown-{what}",
                                        f'{what} "{slug}" is in no tenant inventory{did_you_mean(slug, known)}',
                                        unknown_severity))  # type: ignore[arg-type]

    state = flag.get("state")
    # A scope that is not a mapping already has its schema error.
    if state == "targeted" and not has_any_scope(scope) and isinstance(flag.get("scope", {}), dict):
        line, col = doc.locate(("state",))
        problems.append(Problem(doc.path, line, col, "targeted-empty-scope",
                                "a targeted flag with an empty scope matches nobody; add plans, "
                                "tenantSlugs, partnerSlugs or environments", "warning"))
    if state in ("on", "off") and has_any_scope(scope):
        line, col = doc.locate(("scope",), key=True)
        problems.append(Problem(doc.path, line, col, "ignored-scope",
                                f"the scope of an {state} flag is ignored; use targeted or rollout, "
                                "or remove the scope", "warning"))
    if "pct" in flag and state in ("on", "off", "targeted"):
        line, col = doc.locate(("pct",), key=True)
        problems.append(Problem(doc.path, line, col, "ignored-pct",
                                f"pct is ignored for {'a' if state == 'targeted' else 'an'} {state} flag; "
                                "it only applies to rollout",
                                "warning"))
    expires = flag.get("expires")
    if isinstance(expires, str):
        try:
            date = _dt.date.fromisoformat(expires)
        except ValueError:
            date = None
        if date is not None and date < today:
            line, col = doc.locate(("expires",))
            problems.append(Problem(doc.path, line, col, "expired",
                                    f"the flag expired on {expires}; remove it and its code, "
                                    "or move the date", "warning"))
    return problems


#: Reader problems that leave the value null, so the schema's complaint would only repeat them.
_REFUSED_VALUES = ("yaml-tag", "yaml-alias", "number-too-large", "too-deep")


def validate_project(project: Project, schemas: Schemas, *, today: Optional[_dt.date] = None) -> Result:
    """Every problem of a loaded project: load problems, schema problems and semantic rules."""
    result = Result()
    result.extend(project.problems)
    today = today or _dt.date.today()

    known_tenants: set[str] = set()
    known_partners: set[str] = set()
    for inventory in project.inventories.values():
        if inventory.document is None:
            continue
        result.extend(inventory_problems(inventory.document, schemas, inventory))
        if inventory.columns is not None:  # read once by the fast check
            known_tenants.update(inventory.columns.slugs)
            known_partners.update(filter(None, inventory.columns.partners))
            continue
        tenants = [t for t in inventory.tenants if isinstance(t, dict)]
        for known, field in ((known_tenants, "slug"), (known_partners, "partnerSlug")):
            # C-level loops: at 100,000 tenants, Python code per tenant adds up.
            known.update(filter(str.__instancecheck__, map(methodcaller("get", field), tenants)))
    overridden = any(inv.override for inv in project.inventories.values())
    unknown_severity = "warning" if overridden else "error"

    for stem, doc in sorted(project.flags.items()):
        if isinstance(doc.data, dict):
            result.extend(flag_problems(stem, doc, schemas, known_tenants, known_partners,
                                        unknown_severity, today))
    # A value the reader already refused (an unsupported tag) reads as null: no second error.
    refused = {(p.path, p.line, p.col) for p in project.problems if p.rule in _REFUSED_VALUES}
    if refused:
        result.problems = [p for p in result.problems
                           if p.rule != "schema" or (p.path, p.line, p.col) not in refused]
    result.problems = result.sorted()
    project.models = _flag_models(project, result)
    return result


def _flag_models(project: Project, result: Result) -> dict[str, Flag]:
    """Each flag whose file has no error, parsed once into its typed form."""
    broken = {p.path for p in result.errors}
    models: dict[str, Flag] = {}
    for stem, doc in sorted(project.flags.items()):
        if doc.path in broken or not isinstance(doc.data, dict):
            continue
        try:
            models[stem] = Flag.from_mapping(doc.data, key=stem)
        except ValueError:  # a schema that allows more than the model (an operator's edit)
            continue
    return models


def load_repository(root: Path, *, tenants: Optional[str] = None, environment: Optional[str] = None,
                    cwd: Optional[Path] = None, schemas: Optional[Schemas] = None) -> tuple[Project, Schemas]:
    """Load the repository at ``root`` (with an optional ``--tenants`` override), not validated yet."""
    schemas = schemas or Schemas.load(root / SCHEMA_DIR)
    project = load_project(FsSource(root), schemas.environments)
    if tenants is not None:
        if environment is None:
            from .errors import UsageError

            raise UsageError("--tenants replaces the inventory of one environment; pass --env too")
        display, raw = read_tenants_source(tenants, cwd=cwd)
        load_override(project, environment, display, raw)
    return project, schemas


def load_and_validate(root: Path, *, tenants: Optional[str] = None, environment: Optional[str] = None,
                      cwd: Optional[Path] = None, today: Optional[_dt.date] = None,
                      schemas: Optional[Schemas] = None) -> tuple[Project, Schemas, Result]:
    """Load the repository at ``root`` (with an optional ``--tenants`` override) and validate it."""
    project, schemas = load_repository(root, tenants=tenants, environment=environment, cwd=cwd, schemas=schemas)
    return project, schemas, validate_project(project, schemas, today=today)


def validate_repository(root: Path, **kwargs: Any) -> Result:
    """Validate the repository at ``root``; the library entry point behind ``flagops validate``."""
    return load_and_validate(root, **kwargs)[2]


def require_valid(root: Path, *, then: str = "fix them first (flagops validate)",
                  **kwargs: Any) -> tuple[Project, Schemas, Result]:
    """:func:`load_and_validate`, refusing input with errors (every problem carried for the report).

    ``then`` ends the message: what the refusal means ("nothing was compiled") or what to do.
    """
    today = kwargs.pop("today", None)
    project, schemas = load_repository(root, **kwargs)
    return project, schemas, Validation(project, schemas, then=then, today=today)()


class Validation:
    """The validation of a loaded project, run on the first call (later calls return its result).

    Raises :class:`InvalidInputError` (with every problem) when it finds errors, as
    :func:`require_valid` does; ``then`` ends that message.
    """

    def __init__(self, project: Project, schemas: Schemas, *, then: str, today: Optional[_dt.date] = None):
        self.project, self.schemas, self.then, self.today = project, schemas, then, today
        self.result: Optional[Result] = None

    def __call__(self) -> Result:
        if self.result is None:
            self.result = validate_project(self.project, self.schemas, today=self.today)
        if self.result.errors:
            from .errors import InvalidInputError

            raise InvalidInputError(f"{len(self.result.errors)} error(s) in the input; {self.then}",
                                    self.result.problems)
        return self.result


#: Problems in a flag file that an inventory change can cause.
_REFERENCE_RULES = ("unknown-tenant", "unknown-partner")


def restrict_to(result: Result, paths: Iterable[str]) -> Result:
    """Only the problems ``paths`` (repository-relative) are answerable for.

    That is each given file's own problems, plus those of what it references: a flag file
    references the inventories (its slugs), an inventory is referenced by the flags' slugs, and
    a schema governs everything. Other files' problems (an untracked draft, say) are left out:
    what pre-commit passes is what the commit holds.
    """
    given = set(paths)
    if any(p.startswith(f"{SCHEMA_DIR}/") for p in given):
        return result
    flags = any(p.startswith(f"{FLAGS_DIR}/") for p in given)
    inventories = any(p.startswith(f"{TENANTS_DIR}/") for p in given)
    kept = Result()
    for problem in result.problems:
        if (problem.path in given
                or problem.path in (FLAGS_DIR, TENANTS_DIR)  # the layout itself (a missing directory)
                or (flags and problem.path.startswith(f"{TENANTS_DIR}/"))
                or (inventories and problem.rule in _REFERENCE_RULES)):
            kept.add(problem)
    return kept


def repository_paths(root: Path, paths: Iterable[Path]) -> list[str]:
    """Each path as the repository-relative name problems carry; refuses one outside ``root``."""
    from .errors import UsageError

    base = root.resolve()
    out = []
    for path in paths:
        absolute = Path(os.path.abspath(path))
        try:
            rel = absolute.relative_to(base)
        except ValueError:
            try:  # the root given through a symlink
                rel = absolute.resolve().relative_to(base)
            except ValueError:
                raise UsageError(f"{path} is not inside the repository {root}") from None
        out.append(rel.as_posix())
    return out
