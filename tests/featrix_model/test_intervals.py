"""Split-conformal quantiles: the finite-sample rank, and too few validation rows said, not hidden."""

from __future__ import annotations

import numpy as np
import pandas as pd

from featrix_model import intervals


def test_the_quantile_is_the_finite_sample_conformal_rank():
    r = np.arange(1, 101, dtype=float)  # 100 validation rows, residual ratios 1..100
    notes: list[str] = []
    q = intervals.conformal_quantiles(r[::-1], notes)
    assert q == {"90": 91.0, "95": 96.0}  # ceil(101 × 0.9) = 91st, ceil(101 × 0.95) = 96th smallest
    assert notes[-1].startswith("intervals: split-conformal on 100 validation rows")


def test_too_few_rows_for_a_level_use_the_largest_residual_and_warn():
    notes: list[str] = []
    q = intervals.conformal_quantiles(np.array([0.5, 2.0, 1.0, 1.5, 0.1, 0.7, 0.9, 1.2, 1.1, 0.3, 0.4]), notes)
    assert q["95"] == 2.0 and q["90"] == 2.0  # 11 rows: ceil(12 × 0.9) = 11 → the largest; 95 % needs 19
    assert any("[WARN] interval 95%: 11 validation rows are too few" in n for n in notes)
    assert not any("[WARN] interval 90%" in n for n in notes)


def test_coverages_read_each_level_of_the_responses():
    frame = pd.DataFrame({"intervals": [{"90": [0, 1], "95": [-1, 2]}, {"90": [0, 1], "95": [-1, 2]}]})
    assert intervals.coverages(np.array([0.5, 1.5]), frame) == {"coverage_90": 0.5, "coverage_95": 1.0}
    assert intervals.coverages(np.array([0.5]), pd.DataFrame({"prediction": [1.0]})) == {}
