"""What a user reads stands on its own: README, docs, dataset specs, asset descriptions, log lines,
decisions and error messages point to nothing outside the repository (no sibling folders, no
issue letters, no section numbers of documents a person who clones the repository does not have).

Docstrings and comments are for maintainers and may cite the specification's sections; every other
string literal in the packages can reach a user, so it is scanned.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO

OUTSIDE = re.compile(r"\.\./shared|TASKS\.md|DESIGN\.md|featrix-embedding-space\.txt|\bissue [A-Z]\b|§|\bspec Part\b"
                     r"|\bspec value\b|\bspec targets\b|\blater issue\b")
PACKAGES = ("featrix_model", "featrix_pipeline", "assets")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def runtime_strings(path: Path):
    """(line, text) of every string literal in ``path`` that is not a docstring."""
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


def test_runtime_strings_point_nowhere_outside_the_repository():
    hits = [f"{p.relative_to(REPO)}:{line}: {text[:90]!r}"
            for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))
            for line, text in runtime_strings(p) if OUTSIDE.search(text)]
    assert hits == [], "\n".join(hits)


def test_readme_docs_and_specs_point_nowhere_outside_the_repository():
    files = [REPO / "README.md", *(REPO / "docs").rglob("*.md"), *(REPO / "schemas").rglob("*.yaml"),
             *(REPO / "schemas").rglob("*.json"), *(REPO / "bench").glob("*.py")]
    hits = [f"{p.relative_to(REPO)}:{i}: {line.strip()[:90]}" for p in files
            for i, line in enumerate(p.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert hits == [], "\n".join(hits)


def test_the_scanner_sees_what_it_guards(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text('"""Doc (spec §4.4)."""\nX = "see TASKS.md"\ndef f():\n    """§1."""\n    return f"x {1} §9"\n')
    found = [t for _, t in runtime_strings(sample) if OUTSIDE.search(t)]
    assert found == ["see TASKS.md", " §9"]
