"""flagops.git against real repositories: roots in sub-directories, revisions, worktrees, commits."""

from __future__ import annotations

from pathlib import Path

import pytest

from flagops import git as fgit
from flagops.errors import EXIT_USAGE, GitUserError, NotAGitRepositoryError, RevisionError
from testkit import GitRepo

FLAG = "key: zulip\ndescription: Team chat\nstate: off\n"
TENANTS = "- {id: t1, slug: acme, plan: business}\n"


@pytest.fixture
def nested(tmp_path: Path) -> GitRepo:
    """The flagops root two levels below the top of the work tree, with two commits."""
    g = GitRepo(tmp_path / "top", subdir="ops/flagging")
    g.flag("zulip", FLAG)
    g.tenants("production", TENANTS)
    g.commit("first")
    g.flag("zulip", FLAG.replace("off", "on"))
    g.commit("second")
    return g


def test_open_repository_knows_the_prefix_of_a_nested_root(nested: GitRepo, tmp_path: Path) -> None:
    repo = fgit.open_repository(nested.root)
    assert repo is not None and repo.prefix == "ops/flagging/" and repo.top == nested.top.resolve()
    assert repo.flags_prefix == "ops/flagging/flags/" and repo.head() == nested.head()
    repo.close()
    (tmp_path / "elsewhere").mkdir()
    assert fgit.open_repository(tmp_path / "elsewhere") is None
    with pytest.raises(NotAGitRepositoryError, match="plan compares git revisions"):
        fgit.require_repository(tmp_path / "elsewhere", "plan compares git revisions")


@pytest.mark.parametrize("rev", ["HEAD@{10 years ago}", "no-such-branch", "--all", "", "HEAD^{tree}", "HEAD~9"])
def test_every_unresolvable_revision_is_one_usage_error(nested: GitRepo, rev: str) -> None:
    with fgit.open_repository(nested.root) as repo:  # type: ignore[union-attr]
        with pytest.raises(RevisionError) as caught:
            fgit.resolve_revision(repo, rev)
        assert caught.value.exit_code == EXIT_USAGE and caught.value.hint
        assert fgit.resolve_revision(repo, "HEAD~1").hexsha == nested.git("rev-parse", "HEAD~1").strip()


def test_plan_and_rollback_give_a_usage_error_for_a_reflog_date(nested: GitRepo, flagops, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan = flagops("plan", "--base", "HEAD@{10 years ago}", root=nested.root)
    assert plan.code == 2 and "revision form" in plan.err and "Traceback" not in plan.err
    rollback = flagops("rollback", "--env", "production", "--target", f"file://{tmp_path / 'store'}",
                       "--to", "HEAD@{10 years ago}", root=nested.root)
    assert rollback.code == 2 and "revision form" in rollback.err


def test_flags_revision_is_dirty_only_for_flags_and_schema(nested: GitRepo, tmp_path: Path) -> None:
    sha = nested.head()
    assert fgit.flags_revision(nested.root) == sha
    (nested.top / "README.txt").write_text("elsewhere in the repository\n")
    assert fgit.flags_revision(nested.root) == sha
    nested.flag("new", FLAG.replace("zulip", "new"))
    assert fgit.flags_revision(nested.root) == f"{sha}-dirty"
    assert fgit.flags_revision(tmp_path) is None


def test_worktree_is_the_revision_exactly_and_is_removed(nested: GitRepo) -> None:
    nested.flag("zulip", "uncommitted\n")
    with fgit.open_repository(nested.root) as repo:  # type: ignore[union-attr]
        with fgit.worktree(repo, "HEAD~1") as (root, scratch):
            assert (root / "flags" / "zulip.yaml").read_text() == FLAG
            assert fgit.flags_revision(root) == nested.git("rev-parse", "HEAD~1").strip()
            assert scratch.is_dir()
        assert not root.exists() and not scratch.exists()
        assert len(nested.git("worktree", "list").splitlines()) == 1


def test_git_source_reads_a_revision_like_the_working_tree(nested: GitRepo) -> None:
    with fgit.open_repository(nested.root) as repo:  # type: ignore[union-attr]
        source = fgit.GitSource(repo, "HEAD~1")
        assert source.list_dir("flags") == ["zulip.yaml"]
        assert source.read("flags/zulip.yaml") == FLAG.encode()
        assert not source.exists("flags/none.yaml") and source.list_dir("nothing") is None
        with pytest.raises(FileNotFoundError):
            source.read("flags")


def test_commit_paths_commits_exactly_those_paths(nested: GitRepo) -> None:
    nested.flag("zulip", FLAG)
    other = nested.flag("other", FLAG.replace("zulip", "other"))
    nested.git("add", str(other))
    sha = fgit.commit_paths(nested.root, [nested.root / "flags" / "zulip.yaml"], "Turn zulip off")
    assert nested.git("show", "--name-only", "--format=%s|%an", sha).split() == [
        "Turn", "zulip", "off|Ops", "Tester", "ops/flagging/flags/zulip.yaml"]
    assert nested.git("diff", "--cached", "--name-only").strip() == "ops/flagging/flags/other.yaml"
    nested.remove("flags/other.yaml")
    nested.git("reset", "-q")
    nested.remove("flags/zulip.yaml")
    fgit.commit_paths(nested.root, [nested.root / "flags" / "zulip.yaml"], "Delete zulip")
    assert "zulip.yaml" not in nested.git("ls-files")


def test_commits_are_refused_without_a_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # GitPython reads ~/.gitconfig itself
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    g = GitRepo(tmp_path / "anon", user=False)
    with pytest.raises(GitUserError, match="no user configured"):
        fgit.require_user(g.root)
    with pytest.raises(NotAGitRepositoryError):
        fgit.commit_paths(tmp_path, [tmp_path / "x"], "nothing")
    assert fgit.author(tmp_path / "nowhere")  # outside git: the login name
