"""Bad input: damaged saved artifacts and what a predictor is asked to predict. Each test names one
kind of bad input and the outcome it must get: a damaged folder is one ``ArtifactError`` naming the
folder, the file and what to do (save again, or train again), never a deep traceback or a silent
load; input that is not rows is a TypeError (or, when empty, a ValueError) saying what was given and
what is expected.

A damaged file in a folder with a manifest is caught by the manifest; the checks behind it (JSON,
codecs, weights) are shown on folders whose manifest was written again after the damage (``reseal``)
or removed (a folder saved before manifests existed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from featrix_model import EmbeddingSpace, RelationalSpace, io, load_space
from featrix_model.io import ArtifactError
from featrix_model.predictor import Predictor
from tests.featrix_model.test_artifacts import JOIN, numbers, tiny_space, tiny_tables

torch.set_num_threads(1)
REMEDY = "save it again from the fitted object, or train it again"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """Pristine saved folders: a space, a predictor on it and a relational space (copied before damage)."""
    root = tmp_path_factory.mktemp("pristine")
    es = tiny_space()
    df = numbers()
    Predictor.fit(es, df.assign(y=df["a"] > 0), target="y", epochs=1).save(root / "p")
    es.save(root / "es", figures=False)
    tables = tiny_tables()
    RelationalSpace.fit(tables, [JOIN], parent="customers", time_budget_s=1, child_time_budget_s=1, seed=0, epochs=1,
                        d_model=16, exclude=("customer_id",)).save(root / "rs", figures=False)
    return {"es": root / "es", "p": root / "p", "rs": root / "rs"}


@pytest.fixture()
def copy(saved, tmp_path):
    def make(kind: str, name: str | None = None) -> Path:
        return Path(shutil.copytree(saved[kind], tmp_path / (name or kind)))
    return make


def reseal(folder: Path) -> None:
    """Write the manifest again over the damaged files, so the check behind the manifest is reached."""
    io.write_manifest(folder)


def unseal(folder: Path) -> None:
    """Remove every manifest: a folder as saved before manifests existed."""
    for m in folder.rglob(io.MANIFEST):
        m.unlink()


def refused(load, folder: Path, file: str, where: Path | None = None) -> str:
    """The one ArtifactError ``load(folder)`` raises, naming the folder (``where``: a nested one) and ``file``."""
    with pytest.raises(ArtifactError) as caught:
        load(folder)
    msg, where = str(caught.value), where or folder
    assert caught.value.folder == where and caught.value.file == file, msg
    assert str(where) in msg and file in msg and REMEDY in msg, msg
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__), "one error, not a chain"
    return msg


# ---------------------------------------------------------------------------------- damaged files


def test_truncated_weights_file(copy):
    """model.safetensors cut short: the manifest's size check names it; without a manifest the
    safetensors reader's failure is the same one error."""
    folder = copy("es")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert "bytes where manifest.json recorded" in refused(EmbeddingSpace.load, folder, "model.safetensors")
    unseal(folder)
    assert "cannot be read as safetensors" in refused(EmbeddingSpace.load, folder, "model.safetensors")


def test_config_that_is_not_json(copy):
    """config.json overwritten with text that is not JSON: named, as changed after saving and as not JSON."""
    folder = copy("es")
    (folder / "config.json").write_text('{"format": "featrix-embedding-space", ')
    refused(load_space, folder, "config.json")
    reseal(folder)
    assert "is not valid JSON" in refused(EmbeddingSpace.load, folder, "config.json")
    assert "is not valid JSON" in refused(load_space, folder, "config.json")


def test_codec_missing_from_codecs_json(copy):
    """codecs.json without the codec of a column config.json lists: the column and the file are named."""
    folder = copy("es")
    codecs = json.loads((folder / "codecs.json").read_text())
    del codecs["b"]
    (folder / "codecs.json").write_text(json.dumps(codecs))
    refused(EmbeddingSpace.load, folder, "codecs.json")
    reseal(folder)
    assert "has no codec for column(s) ['b']" in refused(EmbeddingSpace.load, folder, "codecs.json")


def test_weights_of_another_shape_than_the_config_builds(copy):
    """model.safetensors with a tensor of another shape (load_state_dict's size mismatch): named, with the tensor."""
    folder = copy("es")
    state, extra = io.load_tensors(folder / "model.safetensors")
    name = next(k for k, v in state.items() if v.ndim == 2)
    state[name] = torch.zeros(state[name].shape[0] + 1, state[name].shape[1])
    io.save_tensors(folder / "model.safetensors", state, extra)
    reseal(folder)
    msg = refused(EmbeddingSpace.load, folder, "model.safetensors")
    assert "do not fit the network config.json describes" in msg and "size mismatch" in msg and name in msg


def test_file_changed_after_saving(copy):
    """A file whose bytes differ from the manifest at the same size (one flipped byte), and the case
    that started this: another run's timeline.json written beside the model."""
    folder = copy("es")
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    assert "does not match the sha256" in refused(EmbeddingSpace.load, folder, "model.safetensors")
    folder = copy("p")
    (folder / "embedding_space" / "timeline.json").write_text(json.dumps({"timeline": [{"epoch": 1}] * 3}))
    refused(Predictor.load, folder, "embedding_space/timeline.json")


def test_missing_file(copy):
    """A file the manifest lists is gone; in a folder without a manifest, a file a load needs is gone."""
    folder = copy("es")
    (folder / "mutual_information.json").unlink()
    assert "is missing (listed in manifest.json)" in refused(EmbeddingSpace.load, folder, "mutual_information.json")
    unseal(folder)
    assert "mutual_information.json is missing;" in refused(EmbeddingSpace.load, folder, "mutual_information.json")
    (folder / "model.safetensors").unlink()
    assert "model.safetensors is missing;" in refused(EmbeddingSpace.load, folder, "model.safetensors")


def test_damaged_manifest(copy):
    """manifest.json that is not JSON, or lists a path outside the folder: the manifest is named."""
    folder = copy("es")
    (folder / io.MANIFEST).write_text("[1, 2")
    assert "is not valid JSON" in refused(EmbeddingSpace.load, folder, io.MANIFEST)
    (folder / io.MANIFEST).write_text(json.dumps({"files": {"../elsewhere": {"sha256": "0", "size": 1}}}))
    assert "invalid entry '../elsewhere'" in refused(EmbeddingSpace.load, folder, io.MANIFEST)


def test_a_folder_that_is_no_artifact(copy, tmp_path):
    """A path where nothing was saved, and a predictor folder loaded as a space: named, with what to do."""
    with pytest.raises(ArtifactError, match="the folder does not exist; check the path"):
        EmbeddingSpace.load(tmp_path / "nothing")
    with pytest.raises(ArtifactError, match="names format 'featrix-predictor'.*load it with the class that saved it"):
        EmbeddingSpace.load(copy("p"))


# ---------------------------------------------------------------------------------- nested artifacts


def test_damaged_space_inside_a_predictor(copy):
    """The predictor's embedding_space/ damaged: its manifest names the nested file; without
    manifests the nested folder itself is named."""
    folder = copy("p")
    weights = folder / "embedding_space" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    refused(Predictor.load, folder, "embedding_space/model.safetensors")
    unseal(folder)
    refused(Predictor.load, folder, "model.safetensors", where=folder / "embedding_space")
    folder = copy("p", "p2")
    codecs = folder / "embedding_space" / "codecs.json"
    codecs.write_text(json.dumps({k: v for k, v in json.loads(codecs.read_text()).items() if k != "a"}))
    unseal(folder)
    assert "['a']" in refused(Predictor.load, folder, "codecs.json", where=folder / "embedding_space")


def test_damaged_predictor_head(copy):
    """The predictor's own head weights of another shape: named (the space loads fine)."""
    folder = copy("p")
    state, _ = io.load_tensors(folder / "model.safetensors")
    name = next(k for k, v in state.items() if v.ndim == 2)
    state[name] = torch.zeros(state[name].shape[0] + 2, state[name].shape[1])
    io.save_tensors(folder / "model.safetensors", state, {}, format="featrix-predictor")
    refused(Predictor.load, folder, "model.safetensors")
    reseal(folder)
    assert "size mismatch" in refused(Predictor.load, folder, "model.safetensors")


def test_damaged_child_space_of_a_relational_space(copy):
    """A relational space's child space damaged or missing: named from the parent's manifest, or
    (without manifests) in the child's own folder."""
    folder = copy("rs")
    (folder / "children" / "tx" / "model.safetensors").unlink()
    refused(RelationalSpace.load, folder, "children/tx/model.safetensors")
    refused(load_space, folder, "children/tx/model.safetensors")
    folder = copy("rs", "rs2")
    (folder / "children" / "tx" / "config.json").write_text("not json")
    unseal(folder)
    assert "is not valid JSON" in refused(RelationalSpace.load, folder, "config.json", where=folder / "children" / "tx")


# ---------------------------------------------------------------------------------- what to predict


@pytest.fixture(scope="module")
def predictor(saved) -> Predictor:
    return Predictor.load(saved["p"])


def test_predict_frame_of_an_empty_frame(predictor):
    """An empty DataFrame (no rows), to predict_frame or predict, or an empty list: a ValueError saying so."""
    empty = numbers().head(0)
    with pytest.raises(ValueError, match=r"Predictor.predict_frame got an empty DataFrame \(0 rows\): give at least one row"):
        predictor.predict_frame(empty)
    with pytest.raises(ValueError, match=r"Predictor.predict got an empty DataFrame \(0 rows\)"):
        predictor.predict(empty, explain=False)
    with pytest.raises(ValueError, match="Predictor.predict got an empty list"):
        predictor.predict([])


@pytest.mark.parametrize("given, named", [
    ("a=1", "a string ('a=1')"), ([1.0, 2.0], "a list holding float items, not only dicts"),
    ([{"a": 1.0}, "b"], "a list holding str items"), (None, "None"), (3, "a value of type int"),
    (np.zeros((2, 3)), "a value of type ndarray")])
def test_predict_of_something_that_is_not_rows(predictor, given, named):
    """A string, a list of non-dicts, None, a number or an array: a TypeError naming what was given
    and what is expected (a DataFrame, a dict for one row, or a list of dicts)."""
    for method in ("predict", "predict_frame"):
        with pytest.raises(TypeError) as caught:
            getattr(predictor, method)(given)
        msg = str(caught.value)
        assert msg.startswith(f"Predictor.{method} expects a pandas DataFrame, a dict (one row) or a list of dicts"), msg
        assert f"got {named}" in msg, msg
    ok = numbers().head(2)
    assert len(predictor.predict(ok.iloc[0].to_dict(), explain=False)) == 1  # what it accepts still works
    assert len(predictor.predict(ok.to_dict("records"), explain=False)) == 2
    assert len(predictor.predict(ok.iloc[0], explain=False)) == 1


def test_a_damaged_version_summary_in_the_pipelines_store(tmp_path, caplog):
    """A finished version's summary.json cut to nothing or not JSON (a disk fault): the store does not
    stop every later run with a bare JSON error; it sets the version aside with a warning naming the
    file, and the key is trained again (the other versions are kept and listed)."""
    from featrix_pipeline.reuse import SUMMARY, ArtifactStore

    store = ArtifactStore(tmp_path / "store")
    for key in ("aaa", "bbb"):
        tmp = store.start(key)
        (tmp / "model.safetensors").write_bytes(b"x")
        store.publish(key, tmp, {"key": key, "trained_at": key})
    (store.folder("aaa") / SUMMARY).write_text("")
    assert [k for _, k in store.versions()] == ["bbb"]
    with caplog.at_level("WARNING"):
        assert store.find("aaa") is None
    assert "summary.json is not readable JSON" in caplog.text and "trained again" in caplog.text
    assert not store.folder("aaa").exists() and store.find("bbb")["key"] == "bbb"
    assert store.prune() == []
