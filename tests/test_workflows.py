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
    assert "pull_request" in wf["on"] and wf["on"]["push"]["branches"] == ["main"]
    check = wf["jobs"]["check"]
    assert check["permissions"]["pull-requests"] == "write"
    assert wf["permissions"] == {"contents": "read"}  # only the commenting job may write
    assert "pull_request" in check["if"]
    steps = check["steps"]
    runs = [s.get("run", "") for s in steps]
    order = [next(i for i, r in enumerate(runs) if needle in r)
             for needle in ("make install-cli", "flagops validate --format github", "flagops fmt --check",
                            "flagops plan --base")]
    assert order == sorted(order)
    # A flags-only pull request is checked in about a minute: no test suite, no test tools.
    assert not any("make test" in r or "make install\n" in r + "\n" for r in runs)
    assert check["timeout-minutes"] <= 10
    assert steps[0]["with"]["fetch-depth"] == 0
    comment = step(wf, "check", "Post the plan")
    marker = (ROOT / "tools/flagops/templates/plan.md.j2").read_text().split("<!-- flagops-plan -->")
    assert len(marker) == 2 and "'<!-- flagops-plan -->'" in comment["with"]["script"]
    assert "updateComment" in comment["with"]["script"] and "createComment" in comment["with"]["script"]


def test_the_full_plan_is_an_artifact_linked_from_the_comment() -> None:
    from flagops.reporters.plan import ARTIFACT

    wf = load(PULL_REQUEST)
    plan = step(wf, "check", "Plan")["run"]
    assert "--format json > plan.json" in plan and "--format markdown > plan.md" in plan
    upload = step(wf, "check", "Upload the full plan")
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"] == {"name": ARTIFACT, "path": "plan.json", "retention-days": 30}
    comment = step(wf, "check", "Post the plan")
    assert comment["env"]["ARTIFACT_URL"] == f"${{{{ steps.{upload['id']}.outputs.artifact-url }}}}"
    assert "process.env.ARTIFACT_URL" in comment["with"]["script"]


def test_tests_run_when_code_changes_and_on_main() -> None:
    wf = load(PULL_REQUEST)
    test = wf["jobs"]["test"]
    assert test["needs"] == "changes" and test["if"] == "${{ needs.changes.outputs.code == 'true' }}"
    assert any(s.get("run") == "make test" for s in test["steps"])
    assert "check" not in str(test.get("needs"))  # the suite never delays the plan comment


@pytest.mark.parametrize("changed, event, code", [
    (["flags/beta.yaml"], "pull_request", "false"),
    (["flags/beta.yaml", "tenants/staging.yaml"], "pull_request", "false"),
    (["flags/beta.yaml", "tools/x.py"], "pull_request", "true"),
    (["schema/flag.schema.json"], "pull_request", "true"),
    (["flags/beta.yaml"], "push", "true"),
])
def test_the_changes_step_tells_code_from_data(tmp_path: Path, changed: list[str], event: str,
                                               code: str) -> None:
    g = GitRepo(tmp_path / "pr")
    g.write("README.md", "x\n")
    base = g.commit("Base", ALICE, "2026-10-01T09:00:00+00:00")
    for path in changed:
        g.write(path, "changed\n")
    g.commit("Change", BOB, "2026-10-02T09:00:00+00:00")
    output = tmp_path / "output"
    script = step(load(PULL_REQUEST), "changes", "Does the change touch code")["run"]
    run = run_step(script, g.root, {"EVENT": event, "BASE_SHA": base, "GITHUB_OUTPUT": str(output)})
    assert run.returncode == 0, run.stderr
    assert output.read_text() == f"code={code}\n"


def test_publish_workflow_shape() -> None:
    wf = load(PUBLISH)
    assert wf["on"]["push"]["branches"] == ["main"]
    assert wf["on"]["schedule"] and "workflow_dispatch" in wf["on"]
    assert wf["concurrency"] == {"group": "flagops-publish", "cancel-in-progress": False}
    script = step(wf, "publish", "Compile and publish")["run"]
    assert '.venv/bin/flagops publish --env "$env" --target "$FLAGOPS_TARGET"' in script
    assert wf["jobs"]["publish"]["steps"][0]["with"]["fetch-depth"] == 0


def test_only_main_is_ever_published() -> None:
    """A manual run started on a branch publishes nothing: every job is guarded to main."""
    wf = load(PUBLISH)
    for name, job in wf["jobs"].items():
        assert job.get("if") == "${{ github.ref == 'refs/heads/main' }}", name
    text = PUBLISH.read_text(encoding="utf-8")
    assert "Deployment branches: main" in text  # the environment restriction is documented


def _raw_uses(path: Path) -> list[str]:
    return [line.split("uses:", 1)[1].strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip().startswith(("uses:", "- uses:"))]


@pytest.mark.parametrize("workflow", [PULL_REQUEST, PUBLISH], ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit(workflow: Path) -> None:
    import re

    uses = _raw_uses(workflow)
    assert uses
    for use in uses:
        # owner/repo@<40 hex digits> # vX.Y.Z : the tag says what the commit is.
        assert re.fullmatch(r"[\w.-]+/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40} # v\d+\.\d+\.\d+", use), use


@pytest.mark.parametrize("workflow", [PULL_REQUEST, PUBLISH], ids=lambda p: p.name)
def test_checkouts_keep_no_credentials(workflow: Path) -> None:
    wf = load(workflow)
    for job in wf["jobs"].values():
        for s in job["steps"]:
            if s.get("uses", "").startswith("actions/checkout@"):
                assert s["with"]["persist-credentials"] is False


@pytest.mark.parametrize("workflow", [PULL_REQUEST, PUBLISH], ids=lambda p: p.name)
def test_secrets_reach_only_the_steps_that_use_them(workflow: Path) -> None:
    wf = load(workflow)
    assert "secrets." not in json.dumps(wf.get("env", {}))
    for job in wf["jobs"].values():
        assert "secrets." not in json.dumps(job.get("env", {})), "job-level env is seen by every step"
        for s in job["steps"]:
            holds = "secrets." in json.dumps(s)
            if holds:
                # Only the step that compiles (token for --tenants URLs) and publishes (S3 keys).
                assert s["name"].startswith("Compile and publish"), s["name"]
            if "make install" in s.get("run", "") or "pip install" in s.get("run", ""):
                assert not holds, "a registry install never sees a secret"
    if workflow == PUBLISH:
        env = step(wf, "publish", "Compile and publish")["env"]
        assert {k for k, v in env.items() if "secrets." in v} == {
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "FLAGOPS_TENANTS_TOKEN"}


def test_ci_installs_pinned_versions() -> None:
    """make install (which CI runs) installs with constraints.txt, and it pins the test extra."""
    import re
    import tomllib

    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    installs = [line for line in makefile.splitlines()
                if "$(BIN)/pip install" in line and "-e ./client" in line]  # not the bench venv
    assert installs and all("-c constraints.txt" in line for line in installs)
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pinned[re.sub(r"[-_.]+", "-", name).lower()] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for requirement in project["optional-dependencies"]["test"] + project["dependencies"]:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0]).lower()
        if name != "flagops-client":  # this repository's own package
            assert name in pinned, f"{name} is not pinned in constraints.txt"


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
    hooks = {h["id"]: h for h in clientlib.load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))}
    assert set(hooks) == {"flagops-validate", "flagops-validate-python"}
    for hook in hooks.values():
        assert hook["entry"] == "flagops validate"
        assert hook["pass_filenames"] is True  # the staged files, not the whole tree
    # pre-commit 4.4 reads "system" under its new name, "unsupported"; older releases know only "system".
    assert hooks["flagops-validate"]["language"] in ("system", "unsupported")
    python = hooks["flagops-validate-python"]
    assert python["language"] == "python" and python["additional_dependencies"] == ["./client"]
    assert (ROOT / "client" / "pyproject.toml").is_file() and (ROOT / "pyproject.toml").is_file()


def test_pre_commit_checks_what_is_staged(tmp_path: Path) -> None:
    pre_commit = tool("pre-commit")
    hooks = GitRepo(tmp_path / "hooks")
    shutil.copy(ROOT / ".pre-commit-hooks.yaml", hooks.root / ".pre-commit-hooks.yaml")
    hooks.commit("Hooks", ALICE, "2026-10-01T09:00:00+00:00")
    g = GitRepo(tmp_path / "flags")
    g.write("tenants/production.yaml", TENANTS)
    g.flag("alpha", "key: alpha\ndescription: Alpha\nstate: on\n")
    g.commit("Alpha", ALICE, "2026-10-01T09:00:00+00:00")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PRE_COMMIT_HOME": str(tmp_path / "cache")}

    def hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run([pre_commit, "try-repo", str(hooks.root), "flagops-validate"], cwd=g.root,
                              env=env, capture_output=True, text=True, timeout=120)

    g.flag("draft", "key: draft\ndescription: Draft\nstate: maybe\n")  # untracked, broken
    g.flag("beta", "key: beta\ndescription: Beta\nstate: on\n")
    g.git("add", "flags/beta.yaml")
    good = hook()
    assert good.returncode == 0, good.stdout + good.stderr  # the draft does not block beta
    g.flag("beta", "key: beta\ndescription: Beta\nstate: maybe\n")
    g.git("add", "flags/beta.yaml")
    bad = hook()
    assert bad.returncode == 1 and 'flags/beta.yaml:3:8: error: state "maybe" is not one of' in bad.stdout
    assert "draft" not in bad.stdout
    # What a staged flag references: a tenant slug no inventory holds.
    g.flag("beta", "key: beta\ndescription: Beta\nstate: targeted\nscope:\n  tenantSlugs: [nobody]\n")
    g.git("add", "flags/beta.yaml")
    unknown = hook()
    assert unknown.returncode == 1 and "(unknown-tenant)" in unknown.stdout
    g.git("rm", "-q", "--cached", "flags/beta.yaml")
    (g.root / "flags" / "beta.yaml").unlink()


def test_validate_paths_reports_what_the_files_answer_for(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    repo.tenants("production", "- id: t_1\n  slug: acme\n  plan: free\n")
    repo.flag("good", "key: good\ndescription: Good\nstate: targeted\nscope:\n  tenantSlugs: [acme]\n")
    repo.flag("draft", "key: draft\ndescription: Draft\nstate: maybe\n")
    assert flagops("validate", root=repo.root).code == 1
    run = flagops("validate", "flags/good.yaml", root=repo.root, cwd=repo.root)
    assert (run.code, run.out) == (0, "")
    run = flagops("validate", str(repo.root / "flags" / "draft.yaml"), root=repo.root)
    assert run.code == 1 and run.out.startswith("flags/draft.yaml:3:8: error:")
    # An inventory answers for the slugs flags take from it.
    repo.tenants("production", "- id: t_1\n  slug: other\n  plan: free\n")
    run = flagops("validate", "tenants/production.yaml", root=repo.root, cwd=repo.root)
    assert run.code == 1 and "flags/good.yaml:5:17: error: tenant \"acme\" is in no tenant inventory" in run.out
    assert "draft" not in run.out
    # A schema governs everything.
    (repo.root / "schema").mkdir()
    shutil.copy(ROOT / "schema" / "flag.schema.json", repo.root / "schema" / "flag.schema.json")
    run = flagops("validate", "schema/flag.schema.json", root=repo.root, cwd=repo.root)
    assert run.code == 1 and "flags/draft.yaml" in run.out
    outside = flagops("validate", "/etc/passwd", root=repo.root)
    assert outside.code == 2 and "not inside the repository" in outside.err


# --------------------------------------------------------------------------- the browser install


def test_the_browser_install_waits_for_a_busy_apt_with_a_bound(tmp_path: Path) -> None:
    """An unattended upgrade holding apt's locks: the script waits (bounded), it does not fail at once."""
    import fcntl
    import time

    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("needs root and apt-get (as CI runs)")
    held = []
    for lock in ("/var/lib/apt/lists/lock", "/var/lib/dpkg/lock-frontend"):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock apt itself takes
        except OSError:
            os.close(fd)
            for other in held:
                os.close(other)
            pytest.skip("apt is really busy right now")
        held.append(fd)
    try:
        start = time.monotonic()
        run = subprocess.run(["bash", str(ROOT / "scripts" / "install-browser.sh")], capture_output=True,
                             text=True, timeout=60,
                             env={**os.environ, "FLAGOPS_CHROMIUM": str(tmp_path / "no-chromium"),
                                  "FLAGOPS_APT_LOCK_TIMEOUT": "3"})
        waited = time.monotonic() - start
    finally:
        for fd in held:
            os.close(fd)
    assert run.returncode == 1
    assert "apt stayed busy for 3s" in run.stderr
    # bash counts whole seconds: a 3 s bound waits more than 2 s (failing at once takes well under 1 s).
    assert 1.8 <= waited < 30, waited
