"""JSON columns get a child embedding space (spec §5.5), saved inside the parent as JSON + base64 safetensors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from featrix_model import EmbeddingSpace
from featrix_model.codecs.json_codec import JsonCodec, flatten
from featrix_model.codecs.scalar import ScalarCodec
from featrix_model.columns import default_column_types
from featrix_model.encoders.scalar import AdaptiveScalarEncoder
from featrix_model.space import codec_context

torch.set_num_threads(1)


def frame(n=600, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 2, n)
    meta = [json.dumps({"device": {"os": ["ios", "android"][k], "screen": [1170, 720][k] + int(rng.integers(0, 30))},
                        "tags": ["premium", "trial"][k:k + 1], "retries": int(rng.integers(0, 3))}) for k in g]
    meta[3] = "not json"
    meta[4] = None
    return pd.DataFrame({"meta": meta, "spend": np.where(g == 1, 5.0, 80.0) * rng.lognormal(0, 0.2, n)}), g


def test_flatten_paths_and_unparseable_rows():
    flat, missing = flatten(pd.Series(['{"a": {"b": 1}, "c": [1, 2]}', "oops", None]))
    assert sorted(flat.columns) == ["a.b", "c"] and flat.loc[0, "c"] == "[1, 2]"
    assert missing.tolist() == [False, True, True]


def test_json_column_trains_child_space_and_round_trips(tmp_path):
    df, g = frame()
    es = EmbeddingSpace.fit(df, seed=0, progress=False, epochs=3)
    assert es.plan.info["meta"]["semantic_type"] == "json"
    codec = es.plan.codecs["meta"]
    assert isinstance(codec, JsonCodec) and "device.os" in codec.keys_
    child = codec.transform(df["meta"])["child"].numpy()
    ok = np.ones(len(df), bool)
    ok[[3, 4]] = False
    acc = cross_val_score(LogisticRegression(max_iter=1000), child[ok], g[ok], cv=3).mean()
    assert acc > 0.9  # the child space alone separates what the JSON says
    es.save(tmp_path / "es", figures=False)
    again = EmbeddingSpace.load(tmp_path / "es")
    assert again.encode(df).tobytes() == es.encode(df).tobytes()



def test_the_callers_seed_reaches_every_codec_and_the_json_child_space():
    seen = {}

    class Recorder(ScalarCodec):
        @classmethod
        def build(cls, name, semantic_type, context):
            seen[name] = context.seed
            return super().build(name, semantic_type, context)

    df, _ = frame(300)
    types = {**default_column_types(), "scalar": (Recorder, AdaptiveScalarEncoder)}
    EmbeddingSpace.fit(df[["spend"]].assign(other=df["spend"] * 2), seed=5, progress=False, epochs=1,
                       column_types=types)
    assert seen == {"spend": 5, "other": 5}
    assert JsonCodec.build("meta", "json", codec_context(5)).seed == 5
    child = JsonCodec("meta", child_budget_s=1, seed=5).bind(codec_context(5)).fit(df["meta"]).child_
    assert child.config.seed == 5  # not a fixed 0


def test_a_space_with_custom_column_types_loads_back_its_json_child(tmp_path):
    class MyScalar(ScalarCodec):
        pass

    df, _ = frame(300)
    types = {**default_column_types(), "scalar": (MyScalar, AdaptiveScalarEncoder)}
    es = EmbeddingSpace.fit(df, seed=0, progress=False, epochs=1, column_types=types)
    assert any(isinstance(c, MyScalar) for c in es.plan.codecs["meta"].child_.plan.codecs.values())
    es.save(tmp_path / "es", figures=False)
    again = EmbeddingSpace.load(tmp_path / "es", column_types=types)
    assert again.encode(df).tobytes() == es.encode(df).tobytes()
