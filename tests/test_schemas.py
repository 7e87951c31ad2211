"""Every schema in schema/ works from the schema directory alone, offline, in check-jsonschema.

The output schemas (what compile and publish write, what services read) are self-contained;
the input schemas share flag.schema.json's vocabulary through a relative reference. Samples
come from a real compile and a real publish to a file:// store. ajv (strict mode) is tested
by the TypeScript client's suite (clients/typescript/test/schemas.test.mjs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from check_jsonschema.cli.main_command import main as check_jsonschema
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema"
ENV = "production"
OUTPUTS = ("bundle", "manifest", "rules", "snapshot", "head", "catalog")


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Documents of every kind, from a compile and a publish of a small repository."""
    from flagops.cli import main

    base = tmp_path_factory.mktemp("schemas")
    repo = base / "repo"
    (repo / "flags").mkdir(parents=True)
    (repo / "tenants").mkdir()
    (repo / "tenants" / f"{ENV}.yaml").write_text(
        '- {id: "t-1", slug: acme, plan: enterprise}\n'
        '- {id: "t-2", slug: globex, plan: free, partnerSlug: northwind}\n', encoding="utf-8")
    (repo / "flags" / "dark_mode.yaml").write_text(
        "key: dark_mode\ndescription: Dark mode\nstate: rollout\npct: 50\nscope:\n  plans: [enterprise, free]\n",
        encoding="utf-8")
    (repo / "flags" / "partner_portal.yaml").write_text(
        "key: partner_portal\ndescription: Portal\nstate: targeted\nscope:\n  partnerSlugs: [northwind]\n",
        encoding="utf-8")
    out, store = base / "dist", base / "store"
    assert main(["--root", str(repo), "compile", "--out", str(out), "--env", ENV]) == 0
    assert main(["--root", str(repo), "publish", "--env", ENV, "--target", store.as_uri(), "--from", str(out)]) == 0
    env = store / ENV
    return {
        "flag": sorted((repo / "flags").glob("*.yaml")),
        "tenants": [repo / "tenants" / f"{ENV}.yaml"],
        "bundle": sorted((env / "tenants").glob("*.json")),
        "manifest": [env / "manifest.json"],
        "rules": [env / "rules.json"],
        "snapshot": [env / "snapshot.json"],
        "head": [env / "head.json"],
        "catalog": [env / "catalog.json"],
    }


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any download attempt fails at once (a dead proxy), so a remote $ref cannot pass."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


def check(schema: str, *paths: Path, base_uri: bool = False) -> tuple[int, str]:
    args = ["--no-cache", "--schemafile", str(SCHEMA / f"{schema}.schema.json")]
    if base_uri:
        args += ["--base-uri", (SCHEMA / f"{schema}.schema.json").as_uri()]
    result = CliRunner().invoke(check_jsonschema, [*args, *map(str, paths)])
    return result.exit_code, result.output


def test_every_schema_is_covered_here() -> None:
    shipped = {p.name.removesuffix(".schema.json") for p in SCHEMA.glob("*.schema.json")}
    assert shipped == {"flag", "tenants", *OUTPUTS}


@pytest.mark.parametrize("name", OUTPUTS)
def test_output_schemas_are_self_contained(name: str) -> None:
    doc = json.loads((SCHEMA / f"{name}.schema.json").read_text(encoding="utf-8"))
    assert all(ref.startswith("#") for ref in refs(doc)), list(refs(doc))


@pytest.mark.parametrize("name", ["flag", *OUTPUTS])
def test_check_jsonschema_offline_without_base_uri(name: str, samples: dict[str, list[Path]], offline: None) -> None:
    code, output = check(name, *samples[name])
    assert code == 0, output
    assert "validation done" in output


def test_the_tenants_schema_resolves_the_shared_vocabulary_locally(samples: dict[str, list[Path]],
                                                                    offline: None) -> None:
    # Its plan and slug come from flag.schema.json beside it (defined once); the file URI as base
    # resolves that reference inside the schema directory.
    code, output = check("tenants", *samples["tenants"], base_uri=True)
    assert code == 0, output


@pytest.mark.parametrize(("name", "document"), [
    ("bundle", {"schemaVersion": 1, "environment": ENV, "tenant": "acme", "flags": {"dark_mode": "yes"}}),
    ("bundle", {"schemaVersion": 1, "environment": ENV, "tenant": "Not A Slug", "flags": {}}),
    ("head", {"schemaVersion": 1, "environment": ENV, "revision": None, "sequence": 0, "off": [],
              "snapshot": None, "publishedAt": "2026-12-01T21:30:00Z"}),
    ("snapshot", {"schemaVersion": 1, "environment": ENV, "revision": None, "flags": ["a_b"],
                  "tenants": {"acme": "not base64!"}}),
    ("flag", {"key": "dark_mode", "description": "d", "state": "rollout"}),
])
def test_check_jsonschema_rejects_invalid_documents(name: str, document: dict[str, Any], tmp_path: Path,
                                                    offline: None) -> None:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    code, output = check(name, path)
    assert code == 1, output
    assert "Schema validation errors" in output or "ValidationError" in output, output
