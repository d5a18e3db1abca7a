"""The house's structure: imports go one way (assets → featrix_pipeline → featrix_model), no module
imports itself back through others (lazy imports inside functions included), and no room is
overfull."""

from __future__ import annotations

import ast

from tests.conftest import REPO

PACKAGES = ("featrix_model", "featrix_pipeline", "assets")
LAYER = {"featrix_model": 0, "featrix_pipeline": 1, "assets": 2}
MAX_LINES = 450


def modules() -> dict[str, object]:
    out = {}
    for pkg in PACKAGES:
        for p in (REPO / pkg).rglob("*.py"):
            name = ".".join(p.relative_to(REPO).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports anywhere in its body (``from pkg import sub`` counts
    as importing the submodule, not the package)."""
    mods = modules()
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else [node.module, *subs]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[m].update(t for t in targets if t in mods and t != m)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_imports_are_absolute_and_static():
    """The walker below sees absolute imports only: a relative or dynamic import would hide an edge."""
    hidden = []
    for m, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                hidden.append(f"{m}: relative import at line {node.lineno}")
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                    "import_module", "__import__"):
                hidden.append(f"{m}: dynamic import at line {node.lineno}")
    assert hidden == []


def test_no_import_circles_lazy_imports_included():
    assert cycles(import_graph()) == []


def test_cycle_finder_finds_a_planted_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_go_one_way():
    wrong = [f"{m} imports {t}" for m, targets in import_graph().items() for t in targets
             if LAYER[t.split(".")[0]] > LAYER[m.split(".")[0]]]
    assert wrong == []


def test_no_module_is_overfull():
    big = {name: n for name, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert big == {}, f"modules over {MAX_LINES} lines: {big}"


CLOCK_READS = ("perf_counter", "monotonic", "process_time", "time")


def _clock_compared(source: str) -> list[int]:
    """Lines where a test compares a reading of the clock with a number (an elapsed-time assertion)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert):
            for sub in ast.walk(node.test):
                if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute)
                        and sub.func.attr in CLOCK_READS and getattr(sub.func.value, "id", "") == "time"):
                    lines.append(node.lineno)
    return lines


def test_no_test_asserts_a_wall_clock_time():
    """Times are measured in bench/, never asserted: a busy machine must not fail the suite."""
    tests = REPO / "tests"
    found = [f"{p.relative_to(tests)}:{n}" for p in sorted(tests.rglob("test_*.py")) for n in _clock_compared(p.read_text())]
    assert found == []
    assert _clock_compared("import time\nt = time.perf_counter()\nassert time.perf_counter() - t < 10\n") == [3]
