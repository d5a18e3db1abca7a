"""docs/bad-input.md lists every bad-input test with its docstring (the bad input and its outcome),
so the page a user reads is the suite that runs. After adding or changing a test in
tests/bad_input/, regenerate the page with ``.venv/bin/python -m tests.house.test_catalogue``."""

from __future__ import annotations

import ast

from tests.conftest import REPO

PAGE = REPO / "docs" / "bad-input.md"
INTRO = """# Bad input: what happens

Every kind of bad input and fault the project is tested against, with the outcome it gets: a clear
error that names the place and the remedy, or a warning with a documented recovery. Each line is one
test in `tests/bad_input/` (`.venv/bin/python -m pytest tests/bad_input`); a house test keeps this
page and the tests in step.
"""


def render() -> str:
    out = [INTRO]
    for path in sorted((REPO / "tests" / "bad_input").glob("test_*.py")):
        module = ast.parse(path.read_text())
        head = (ast.get_docstring(module) or "").split("\n\n")[0].replace("\n", " ")
        out += [f"## `{path.name}`", "", head, "", "| test | bad input → outcome |", "| --- | --- |"]
        for node in module.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                text = " ".join((ast.get_docstring(node) or node.name.removeprefix("test_").replace("_", " ")).split())
                out.append(f"| `{node.name}` | {text.replace('|', '/')} |")
        out.append("")
    return "\n".join(out)


def test_the_bad_input_page_lists_every_bad_input_test():
    assert PAGE.read_text() == render(), ("docs/bad-input.md is out of step with tests/bad_input/: regenerate it "
                                          "with .venv/bin/python -m tests.house.test_catalogue")


def test_there_are_at_least_forty_kinds_of_bad_input():
    kinds = render().count("\n| `test_")
    assert kinds >= 40, kinds


if __name__ == "__main__":
    PAGE.write_text(render())
    print(f"wrote {PAGE}")
