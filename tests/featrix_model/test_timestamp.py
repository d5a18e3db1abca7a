"""TimestampCodec + TimestampEncoder (spec §5.4): cyclical features, time zones, state, encoder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model.codecs.timestamp import FEATURE_NAMES, TimestampCodec
from featrix_model.encoders.timestamp import TimestampEncoder
from tests.featrix_model.vectorised import lines_run

torch.set_num_threads(1)
D = 64
COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _pair(feats: torch.Tensor, name: str) -> np.ndarray:
    return feats[:, [COL[f"{name}_sin"], COL[f"{name}_cos"]]].numpy().astype(float)


def _angle_fraction(feats: torch.Tensor, name: str) -> np.ndarray:
    p = _pair(feats, name)
    return np.mod(np.arctan2(p[:, 0], p[:, 1]) / (2 * np.pi), 1.0)


def _features(values) -> torch.Tensor:
    s = pd.Series(values)
    return TimestampCodec("t").fit(s).transform(s)["features"]


def test_layout_and_shapes():
    assert len(FEATURE_NAMES) == 20 and TimestampCodec().encoder_kwargs() == {"n_features": 20}
    s = pd.Series(pd.date_range("2019-03-01", periods=1000, freq="17h"))
    out = TimestampCodec("t").fit(s).transform(s)
    assert out["features"].shape == (1000, 20) and out["features"].dtype == torch.float32
    assert out["missing"].shape == (1000,) and not out["missing"].any()
    assert out["recon_target"].shape == (1000,) and out["recon_target"].abs().max() <= 10
    f = out["features"]
    for i in range(0, 16, 2):  # 8 cyclical sin/cos pairs on the unit circle
        np.testing.assert_allclose(f[:, i] ** 2 + f[:, i + 1] ** 2, 1.0, rtol=1e-5)


def test_december_31_is_near_january_1():
    f = _features(["2023-12-31", "2024-01-01", "2023-07-01"])
    for name in ("day_of_year", "month", "week_of_year"):
        p = _pair(f, name)
        d_new_year = np.linalg.norm(p[0] - p[1])
        d_summer = np.linalg.norm(p[0] - p[2])
        assert d_new_year < d_summer, name
    doy = _pair(f, "day_of_year")
    assert np.linalg.norm(doy[0] - doy[1]) < 0.02  # one day apart on a 365-day circle
    cyc = f[:, :16].numpy()
    assert np.linalg.norm(cyc[0] - cyc[1]) < np.linalg.norm(cyc[0] - cyc[2])


def test_day_of_week_monday_is_zero_and_calendar_fractions():
    # 2024-01-15 is a Monday; 2024-01-21 a Sunday
    f = _features(["2024-01-15T13:45:30", "2024-01-21T00:00:00", "2024-12-31T23:59:59"])
    np.testing.assert_allclose(_pair(f, "day_of_week")[0], [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(_angle_fraction(f, "day_of_week")[1], 6 / 7, atol=1e-6)
    np.testing.assert_allclose(_angle_fraction(f, "hour")[0], 13 / 24, atol=1e-6)
    np.testing.assert_allclose(_angle_fraction(f, "minute")[0], 45 / 60, atol=1e-6)
    np.testing.assert_allclose(_angle_fraction(f, "second")[0], 30 / 60, atol=1e-6)
    np.testing.assert_allclose(_angle_fraction(f, "month")[0], 0.0, atol=1e-6)
    np.testing.assert_allclose(_angle_fraction(f, "day_of_year")[2], 365 / 366, atol=1e-6)  # leap year
    np.testing.assert_allclose(_angle_fraction(f, "day_of_month")[2], 30 / 31, atol=1e-6)


def test_week_of_year_in_range():
    days = pd.Series(pd.date_range("2015-01-01", "2026-12-31", freq="D"))
    f = _features(days)
    weeks = np.rint(_angle_fraction(f, "week_of_year") * 53).astype(int) % 53 + 1
    assert weeks.min() == 1 and weeks.max() == 53
    np.testing.assert_array_equal(weeks, days.dt.isocalendar().week.to_numpy(dtype=int))


def test_timezone_offsets():
    codec = TimestampCodec("t").fit(pd.Series(["2024-01-15T10:00:00Z"]))
    out = codec.transform(pd.Series(["2024-01-15T10:00:00+05:30", "2024-01-15T10:00:00-0800",
                                     "2024-01-15T10:00:00Z", "2024-01-15T10:00:00", "2024-01-15"]))
    f = out["features"]
    np.testing.assert_allclose(f[:, COL["timezone_offset"]], np.array([5.5, -8, 0, 0, 0]) / 12, atol=1e-6)
    # calendar features are taken on the UTC instant: 10:00+05:30 is 04:30 UTC, 10:00-08:00 is 18:00 UTC
    np.testing.assert_allclose(_angle_fraction(f, "hour")[:3], np.array([4, 18, 10]) / 24, atol=1e-6)
    np.testing.assert_allclose(_angle_fraction(f, "minute")[0], 30 / 60, atol=1e-6)
    aware = pd.Series(pd.to_datetime(["2024-01-15 10:00", "2024-07-15 10:00"]).tz_localize("America/New_York"))
    f = codec.transform(aware)["features"]
    np.testing.assert_allclose(f[:, COL["timezone_offset"]], np.array([-5, -4]) / 12, atol=1e-6)
    np.testing.assert_allclose(_angle_fraction(f, "hour"), np.array([15, 14]) / 24, atol=1e-6)


def test_missing_unparseable_and_linear_features():
    s = pd.Series(["2021-06-01", None, "", "not a date", "March 5, 2021", "2031-06-01"], dtype=object)
    codec = TimestampCodec("t").fit(s)
    rep = codec.report()
    assert rep["n_unparseable"] == 1 and rep["unparseable_examples"] == ["not a date"] and rep["n_present"] == 3
    out = codec.transform(s)
    assert out["missing"].tolist() == [False, True, True, True, False, False]
    assert (out["features"][out["missing"]] == 0).all() and (out["recon_target"][out["missing"]] == 0).all()
    f = out["features"]
    assert f[4, COL["year"]] == f[0, COL["year"]] < f[5, COL["year"]]
    assert f[4, COL["year_since_2000"]] < f[0, COL["year_since_2000"]]  # fractional years, not calendar years
    np.testing.assert_allclose(f[0, COL["year_since_2000"]], 21.42 / 10, atol=2e-3)
    np.testing.assert_allclose(f[5, COL["year_since_2020"]], 11.42 / 10, atol=2e-3)
    far = codec.transform(pd.Series(["1700-01-01", "2262-01-01"]))["features"]
    assert torch.isfinite(far).all() and far.abs().max() <= 10


def test_state_round_trip_identical_bytes():
    s = pd.Series(pd.date_range("2010-01-01", periods=500, freq="7D").strftime("%Y-%m-%dT%H:%M:%S+02:00"))
    codec = TimestampCodec("t").fit(s)
    clone = TimestampCodec.from_config(json.loads(json.dumps(codec.to_config(), allow_nan=False)))
    a, b = codec.transform(s), clone.transform(s)
    for k in a:
        assert a[k].numpy().tobytes() == b[k].numpy().tobytes(), k


def test_transform_is_vectorised():
    # Python lines run inside featrix_model at two sizes (tests/featrix_model/vectorised.py)
    s = pd.Series(pd.date_range("2000-01-01", periods=100_000, freq="37min"))
    codec = TimestampCodec("t").fit(s)
    strings = s.dt.strftime("%Y-%m-%dT%H:%M:%S-05:00")  # 100K distinct strings
    for values in (s, strings):
        small = values.iloc[:1_000].reset_index(drop=True)
        n_small, _ = lines_run(lambda: codec.transform(small))
        n_big, out = lines_run(lambda: codec.transform(values))
        assert out["features"].shape[0] == 100_000 and not out["missing"].any()
        assert 0 < n_big <= 1.1 * n_small + 50, (f"{values.dtype}: {n_small} Python lines for 1K rows, {n_big} for "
                                                 "100K — per-row Python?")


def test_encoder_shapes_missing_and_batchnorm_edge_cases():
    torch.manual_seed(0)
    s = pd.Series(["2024-01-15T10:00:00", None, "2023-05-02T08:30:00", "2022-11-30T23:00:00"] * 8, dtype=object)
    codec = TimestampCodec("t").fit(s)
    batch = codec.transform(s)
    enc = TimestampEncoder(D, **codec.encoder_kwargs())
    assert enc.hidden == 2 * D and sum(p.numel() for p in enc.parameters()) < 35_000
    full, short = enc(batch)
    assert full.shape == (32, D) and short.shape == (32, 3)
    assert torch.allclose(short.norm(dim=-1), torch.ones(32), atol=1e-5)
    miss = batch["missing"]
    assert torch.equal(full[miss], enc.missing_embedding.detach().expand(int(miss.sum()), D))
    # BatchNorm statistics use present rows only: adding missing rows does not change present outputs
    enc.train()
    torch.manual_seed(1)
    enc.set_dropout(0.0)
    present_only = {k: v[~miss] for k, v in batch.items()}
    np.testing.assert_allclose(enc(batch)[0][~miss].detach(), enc(present_only)[0].detach(), atol=1e-5)
    one = {k: v[:2] for k, v in batch.items()}  # one present row + one missing row, training mode
    assert torch.isfinite(enc(one)[0]).all()
    all_missing = {k: v[miss] for k, v in batch.items()}
    assert torch.equal(enc(all_missing)[0], enc.missing_embedding.detach().expand(int(miss.sum()), D))
    assert TimestampEncoder(D, hidden=256).hidden == 256


def test_encoder_learns_weekend():
    """A linear head on the encoder output separates weekends from weekdays (200 Adam steps)."""
    torch.manual_seed(0)
    s = pd.Series(pd.date_range("2020-01-01", periods=2000, freq="11h"))
    codec = TimestampCodec("t").fit(s)
    batch = codec.transform(s)
    y = torch.tensor((s.dt.day_of_week >= 5).to_numpy(), dtype=torch.float32)
    enc, head = TimestampEncoder(32), torch.nn.Linear(32, 1)  # hidden 64: keeps the CPU test quick
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=3e-3)
    for _ in range(200):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(enc(batch)[0]).squeeze(-1), y)
        loss.backward()
        opt.step()
    enc.eval()
    with torch.no_grad():
        acc = ((head(enc(batch)[0]).squeeze(-1) > 0).float() == y).float().mean().item()
    assert acc > 0.95, acc


@pytest.mark.parametrize("values", [[None, None], []])
def test_degenerate_columns(values):
    codec = TimestampCodec("t").fit(pd.Series(values, dtype=object))
    json.dumps(codec.get_state(), allow_nan=False)
    out = codec.transform(pd.Series(["2024-01-01", None]))
    assert out["missing"].tolist() == [False, True] and torch.isfinite(out["features"]).all()
