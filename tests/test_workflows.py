"""The CI workflows, CODEOWNERS and the pre-commit hook, checked offline and run for real.

The workflows are checked with check-jsonschema's built-in GitHub workflow schema and with
actionlint; their shell steps are run against throw-away repositories with the real flagops.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_history import ALICE, BOB, TENANTS, GitRepo

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PULL_REQUEST = WORKFLOWS / "pull-request.yml"
PUBLISH = WORKFLOWS / "publish.yml"
BIN = Path(sys.executable).parent


def load(path: Path) -> dict[str, Any]:
    # PyYAML reads the key "on" as True (YAML 1.1); map it back for readable assertions.
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


def step(workflow: dict[str, Any], job: str, name_start: str) -> dict[str, Any]:
    return next(s for s in workflow["jobs"][job]["steps"] if s.get("name", "").startswith(name_start))


def tool(name: str) -> str:
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (make install puts it into .venv)")
    return str(found)


# --------------------------------------------------------------------------- offline checks


def test_workflows_match_the_github_workflow_schema() -> None:
    run = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                          "vendor.github-workflows", str(PULL_REQUEST), str(PUBLISH)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    timeouts = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                               "custom.github-workflows-require-timeout", str(PULL_REQUEST), str(PUBLISH)],
                              capture_output=True, text=True)
    assert timeouts.returncode == 0, timeouts.stdout + timeouts.stderr


def test_workflows_pass_actionlint() -> None:
    run = subprocess.run([tool("actionlint"), "-no-color", str(PULL_REQUEST), str(PUBLISH)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_checks_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    schema = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                             "vendor.github-workflows", str(broken)], capture_output=True, text=True)
    assert schema.returncode == 1
    lint = subprocess.run([tool("actionlint"), "-no-color", str(broken)], capture_output=True, text=True)
    assert lint.returncode == 1 and "stepz" in lint.stdout


def test_pull_request_workflow_shape() -> None:
    wf = load(PULL_REQUEST)
    assert "pull_request" in wf["on"]
    assert wf["permissions"]["pull-requests"] == "write"
    steps = wf["jobs"]["check"]["steps"]
    runs = [s.get("run", "") for s in steps]
    order = [next(i for i, r in enumerate(runs) if needle in r)
             for needle in ("make install", "flagops validate --format github", "make test",
                            "flagops plan --base")]
    assert order == sorted(order)
    assert steps[0]["with"]["fetch-depth"] == 0
    comment = step(wf, "check", "Post the plan")
    marker = (ROOT / "tools/flagops/templates/plan.md.j2").read_text().split("<!-- flagops-plan -->")
    assert len(marker) == 2 and "'<!-- flagops-plan -->'" in comment["with"]["script"]
    assert "updateComment" in comment["with"]["script"] and "createComment" in comment["with"]["script"]


def test_publish_workflow_shape() -> None:
    wf = load(PUBLISH)
    assert wf["on"]["push"]["branches"] == ["main"]
    assert wf["on"]["schedule"] and "workflow_dispatch" in wf["on"]
    assert wf["concurrency"] == {"group": "flagops-publish", "cancel-in-progress": False}
    script = step(wf, "publish", "Compile and publish")["run"]
    assert '.venv/bin/flagops publish --env "$env" --target "$FLAGOPS_TARGET"' in script
    assert wf["jobs"]["publish"]["steps"][0]["with"]["fetch-depth"] == 0


def test_codeowners_cover_flags_and_schema() -> None:
    owners = {}
    for line in (ROOT / ".github" / "CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, *teams = line.split()
            owners[pattern] = teams
    assert owners["/flags/"] and owners["/schema/"]
    assert all(t.startswith("@") for teams in owners.values() for t in teams)


# --------------------------------------------------------------------------- the steps, for real


def run_step(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a workflow's ``run:`` script the way GitHub's bash shell does."""
    (cwd / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    link = cwd / ".venv" / "bin" / "flagops"
    if not link.exists():
        link.symlink_to(BIN / "flagops")
    full = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **env}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          cwd=cwd, env=full, capture_output=True, text=True, timeout=120)


@pytest.fixture
def flags_repo(tmp_path: Path) -> tuple[GitRepo, str]:
    g = GitRepo(tmp_path / "flags-repo")
    (g.root / ".git" / "info" / "exclude").write_text(".venv/\ndist/\nplan.md\n")
    g.write("tenants/production.yaml", TENANTS)
    g.write("tenants/staging.yaml", TENANTS)
    g.flag("beta", "key: beta\ndescription: Beta\nstate: off\n")
    base = g.commit("Add beta", ALICE, "2026-10-01T09:00:00+00:00")
    g.flag("beta", "key: beta\ndescription: Beta\nstate: targeted\nscope:\n  plans: [enterprise]\n")
    g.commit("Beta for enterprise", BOB, "2026-10-02T09:00:00+00:00")
    return g, base


def test_pull_request_plan_step_writes_the_comment_and_summary(flags_repo, tmp_path: Path) -> None:
    g, base = flags_repo
    summary = tmp_path / "summary.md"
    script = step(load(PULL_REQUEST), "check", "Plan")["run"]
    run = run_step(script, g.root, {"BASE_SHA": base, "GITHUB_STEP_SUMMARY": str(summary)})
    assert run.returncode == 0, run.stderr
    plan = (g.root / "plan.md").read_text()
    assert plan.startswith("<!-- flagops-plan -->") and "| `beta` |" in plan
    assert summary.read_text() == plan


def test_publish_step_publishes_every_environment(flags_repo, tmp_path: Path) -> None:
    g, _ = flags_repo
    target = tmp_path / "store"
    script = step(load(PUBLISH), "publish", "Compile and publish")["run"]
    env = {"FLAGOPS_TARGET": f"file://{target}", "CHOSEN": "all", "DRY_RUN": "false",
           "ALLOW_ROLLBACK": "false", "TENANTS_URL_development": "", "TENANTS_URL_staging": "",
           "TENANTS_URL_production": ""}
    run = run_step(script, g.root, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no inventory for development: skipped" in run.stdout
    published = sorted(p.relative_to(target).as_posix() for p in target.rglob("manifest.json"))
    assert len(published) == 2 and any("production" in p for p in published)
    assert any("staging" in p for p in published)
    manifest = json.loads(next(target.rglob("manifest.json")).read_text())
    assert manifest["revision"] == g.git("rev-parse", "HEAD").strip()
    missing = run_step(script, g.root, {**env, "FLAGOPS_TARGET": ""})
    assert missing.returncode == 1 and "FLAGOPS_TARGET" in missing.stdout


# --------------------------------------------------------------------------- pre-commit


def test_pre_commit_hook_manifest_is_valid() -> None:
    clientlib = pytest.importorskip("pre_commit.clientlib")
    hooks = clientlib.load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))
    (hook,) = hooks
    assert hook["id"] == "flagops-validate" and hook["entry"] == "flagops validate"
    assert hook["pass_filenames"] is False


def test_pre_commit_hook_rejects_a_broken_flag(tmp_path: Path) -> None:
    pre_commit = tool("pre-commit")
    hooks = GitRepo(tmp_path / "hooks")
    shutil.copy(ROOT / ".pre-commit-hooks.yaml", hooks.root / ".pre-commit-hooks.yaml")
    hooks.commit("Hooks", ALICE, "2026-10-01T09:00:00+00:00")
    g = GitRepo(tmp_path / "flags")
    g.write("tenants/production.yaml", TENANTS)
    g.flag("beta", "key: beta\ndescription: Beta\nstate: maybe\n")
    g.git("add", "-A")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    cmd = [pre_commit, "try-repo", str(hooks.root), "flagops-validate", "--all-files"]
    bad = subprocess.run(cmd, cwd=g.root, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and 'state "maybe" is not one of' in bad.stdout
    g.flag("beta", "key: beta\ndescription: Beta\nstate: on\n")
    g.git("add", "-A")
    good = subprocess.run(cmd, cwd=g.root, env=env, capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stdout + good.stderr
