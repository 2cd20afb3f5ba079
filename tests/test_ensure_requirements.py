"""tools/ensure_requirements.py: the --no-deps file and the repository's requirement files."""

from config import REPO_ROOT
from tools.ensure_requirements import parse_argv, unsatisfied


def test_no_deps_requirements_are_satisfied_here():
    assert unsatisfied(REPO_ROOT / "requirements-nodeps.txt") == []


def test_parse_argv_marks_the_no_deps_files():
    assert parse_argv(["prog"]) == [("requirements.txt", False)]
    assert parse_argv(["prog", "a.txt", "--no-deps", "b.txt", "c.txt"]) == [
        ("a.txt", False), ("b.txt", True), ("c.txt", False)]


def test_makefile_installs_the_no_deps_file_without_dependencies():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "--no-deps requirements-nodeps.txt" in makefile
