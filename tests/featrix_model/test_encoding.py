"""The serving path: fixed-shape encoding forwards, occluded variants in one pass, the batched
column encoders, and the numpy calendar of the timestamp codec."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model import EmbeddingSpace, Predictor
from featrix_model.codecs.base import ROWS, take_rows
from featrix_model.codecs.timestamp import calendar
from featrix_model.encoding import ENCODE_BATCH
from featrix_model.training.trainer import gather


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    g = np.random.default_rng(seed)
    df = pd.DataFrame({f"x{i}": g.normal(size=n) for i in range(4)})
    df["size"] = g.choice(["small", "medium", "large"], n)
    df["colour"] = g.choice(["red", "green", "blue", "black"], n)
    df["when"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(g.integers(0, 8760, n), unit="h")
    df.loc[g.random(n) < 0.2, "when"] = pd.NaT  # a row's bytes must not depend on how many rows are missing
    df["y"] = np.where(df["x0"] + (df["size"] == "large") > 0.5, "hi", "lo")
    return df


@pytest.fixture(scope="module")
def fitted():
    df = _table(400)
    space = EmbeddingSpace.fit(df.drop(columns=["y"]), epochs=2, progress=False, threads=1)
    return space, Predictor.fit(space, df, "y", epochs=3, threads=1), _table(2 * 64 + 9, seed=1)


def test_a_row_alone_gets_the_bytes_it_gets_among_others(fitted):
    space, _, rows = fitted
    assert len(rows) > 2 * ENCODE_BATCH  # several forwards, the last one padded
    together = space.encode(rows.drop(columns=["y"]))
    for i in range(len(rows)):  # every row: a byte difference may show for some rows only
        assert space.encode(rows.drop(columns=["y"]).iloc[[i]]).tobytes() == together[i].tobytes(), i


def test_occluded_variants_have_the_bytes_of_encoding_with_the_columns_hidden(fitted):
    space, _, rows = fitted
    X = space.prepare(rows.drop(columns=["y"]))
    hides = [(), ("x0",), ("size", "when"), tuple(space.plan.columns)]
    variants = space.encode_variants(X, hides)
    assert variants.shape == (len(hides), len(X), space.d_model)
    for v, h in zip(variants, hides):
        assert v.tobytes() == space.encode(X, hide=h).tobytes()
    assert not np.array_equal(variants[0], variants[1])  # hiding a column changes the embedding


def test_single_row_importance_is_occlusion_of_each_column(fitted):
    space, pred, rows = fitted
    row = rows.drop(columns=["y"]).iloc[3].to_dict()
    got = pred.predict(row)[0]
    base = pred.predict(row, explain=False)[0]
    assert got["probabilities"] == base["probabilities"] and base["feature_importance"] == {}
    scores = lambda hide: pred.task_.scores(pred._outputs(space.prepare(pd.DataFrame([row])), hide)[1])  # noqa: E731
    full = scores(())
    for c, v in got["feature_importance"].items():
        expected = pred.task_.row_score(full, full) - pred.task_.row_score(scores((c,)), full)
        assert v == pytest.approx(float(expected[0]), abs=1e-6)
    assert set(got["feature_importance"]) == set(space.plan.columns)
    assert got == pred.predict(pd.DataFrame([row] * 3))[1]  # a row's response does not depend on its company


def test_the_numpy_calendar_agrees_with_pandas():
    g = np.random.default_rng(0)
    ns = g.integers(-2_000_000_000, 5_000_000_000, 20_000) * 10**9 + g.integers(0, 10**9, 20_000)
    values = np.concatenate([ns.astype("datetime64[ns]"), [np.datetime64("NaT")],
                             pd.date_range("1999-12-20", "2033-01-12", freq="13h").to_numpy("datetime64[ns]")])
    far = np.array(["0001-01-01", "1500-03-01T07:08:09.123456", "2262-04-12", "9999-12-31T23:59:59"],
                   dtype="datetime64[us]")  # beyond datetime64[ns] (a 9999-12-31 sentinel is common)
    values = np.concatenate([values.astype("datetime64[us]"), far])
    cal, dt = calendar(values), pd.Series(values).dt
    expected = {"second": dt.second, "microsecond": dt.microsecond, "minute": dt.minute, "hour": dt.hour,
                "day": dt.day, "month": dt.month, "year": dt.year, "days_in_month": dt.days_in_month,
                "day_of_week": dt.day_of_week, "day_of_year": dt.day_of_year, "iso_week": dt.isocalendar().week,
                "days_in_year": pd.Series(np.where(dt.is_leap_year, 366, 365)).where(dt.year.notna())}
    for name, want in expected.items():
        assert np.array_equal(cal[name], want.to_numpy(dtype="float64", na_value=np.nan), equal_nan=True), name
    assert cal["missing"].sum() == 1
    seconds = (pd.Series(values) - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy("float64", na_value=np.nan)
    assert np.allclose(cal["epoch_s"], seconds, rtol=0, atol=1e-5, equal_nan=True)


def test_sentence_vectors_are_kept_once_per_distinct_value_not_per_row(fitted):
    space, _, _ = fitted
    many = _table(5_000, seed=2).drop(columns=["y"])
    data = space.plan.transform(space.prepare(many))
    colour = data["colour"]
    assert colour["semantic"].shape == (5, 384)  # 4 colours and the missing row, for 5,000 rows
    assert colour["semantic" + ROWS].shape == (5_000,)
    per_row = take_rows(colour, torch.arange(5_000))["semantic"]
    assert per_row.shape == (5_000, 384) and torch.equal(per_row[7], colour["semantic"][colour["semantic" + ROWS][7]])
    assert torch.equal(gather(data, torch.arange(3))["colour"]["semantic"], per_row[:3])


def test_a_timestamp_row_has_the_same_bytes_however_many_rows_beside_it_are_missing():
    from featrix_model.encoders.timestamp import TimestampEncoder

    torch.manual_seed(0)
    enc = TimestampEncoder(d_model=64, n_features=20).eval()
    x = torch.randn(ENCODE_BATCH, 20)
    outputs = set()
    with torch.no_grad():
        for n_missing in range(ENCODE_BATCH):
            missing = torch.zeros(ENCODE_BATCH, dtype=torch.bool)
            missing[ENCODE_BATCH - n_missing:] = True
            outputs.add(enc({"features": x, "missing": missing})[0][0].numpy().tobytes())
    assert len(outputs) == 1


def test_stacked_encoders_compute_what_the_encoders_compute_one_by_one(fitted):
    from featrix_model.encoders.bank import EncoderBank, bank_encode, stacked_converters

    space, _, rows = fitted
    net = space.net.eval()
    bank = EncoderBank(net.encoders)
    kinds = {type(net.encoders[i]).__name__ for positions, _ in bank.groups for i in positions}
    assert kinds == {"AdaptiveScalarEncoder", "SetEncoder"} and len(bank.stacked) == 6  # 4 numbers, 2 categories
    batch = gather(space.transform(rows.drop(columns=["y"])), torch.arange(ENCODE_BATCH))
    with torch.no_grad():
        one_by_one, short = net.encode_columns(batch)
        stacked, stacked_short = bank_encode(net, batch)
        assert torch.allclose(stacked, one_by_one, atol=1e-5) and torch.allclose(stacked_short, short, atol=1e-5)
        (conv, rel), (conv_s, rel_s) = net.joint.prepare(one_by_one), net.joint.prepare(one_by_one, stacked_converters(net.joint))
        assert torch.allclose(conv_s, conv, atol=1e-5) and torch.allclose(rel_s, rel, atol=1e-5)
        visible = space.visibility(ENCODE_BATCH, ("x1",))
        assert torch.equal(net.joint.attend(conv, rel, visible)[0], net.joint(one_by_one, visible)[0])


def test_stacked_weights_follow_the_encoders_weights(fitted):
    import copy

    from featrix_model.encoders.bank import bank_encode

    space, _, rows = fitted
    net = copy.deepcopy(space.net).eval()
    batch = gather(space.transform(rows.drop(columns=["y"])), torch.arange(ENCODE_BATCH))
    with torch.no_grad():
        before = bank_encode(net, batch)[0]
        scalar = next(i for i, e in enumerate(net.encoders) if type(e).__name__ == "AdaptiveScalarEncoder")
        net.encoders[scalar].out.weight.mul_(1.5)  # in place, as an optimizer step or load_state_dict does
        after = bank_encode(net, batch)[0]
        assert not torch.allclose(after[:, scalar], before[:, scalar])
        assert torch.allclose(after, net.encode_columns(batch)[0], atol=1e-5)
        for enc in net.encoders:  # a buffer too: the semantic floor of a fresh set encoder caps its gate
            if type(enc).__name__ == "SetEncoder":
                enc.semantic_floor.fill_(0.95)
        capped = bank_encode(net, batch)[0]
        assert not torch.allclose(capped, after) and torch.allclose(capped, net.encode_columns(batch)[0], atol=1e-5)


@pytest.mark.parametrize("cells", [[True, 1, 1.0, "1", None, float("nan")], ["a", " a", "b", None, "", "  "],
                                   [pd.NA, pd.NaT, 3, 3.5, np.float64(3.5)], [[1, 2], [1, 2], None],
                                   [b"x", "x"], [np.int64(7), 7.0], list("abcabc")])
def test_a_few_rows_get_the_texts_the_pandas_path_gives(cells):
    from featrix_model.codecs.string import SMALL, column_texts

    few = pd.Series(cells, dtype=object)
    many = pd.concat([few] * (SMALL // len(cells) + 1), ignore_index=True)  # past SMALL: the pandas path
    for normalise in (None, str.upper):
        inv, texts = column_texts(few, normalise)
        inv_many, texts_many = column_texts(many, normalise)
        assert texts == texts_many and inv.tolist() == inv_many[: len(cells)].tolist()
