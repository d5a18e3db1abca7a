"""Saved artifacts (embedding space, predictor, relational space): written atomically with a manifest
of every file, byte-identical when saved twice, never mixed with a live training timeline, and the
recorded CUDA determinism settings. The damaged-folder cases are in tests/bad_input/test_artifacts.py.

Tiny numeric tables, one or two epochs: these tests are about files, not what was learned.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model import EmbeddingSpace, RelationalSpace, io, load_space
from featrix_model.predictor import Predictor, PredictorConfig
from featrix_model.space import training_settings
from featrix_model.training.config import TrainingConfig, auto_config
from featrix_model.training.trainer import cuda_determinism

torch.set_num_threads(1)
JOIN = "tx.customer_id = customers.customer_id"


def numbers(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"a": x, "b": 2 * x + 0.1 * rng.normal(size=n), "c": rng.normal(size=n)})


def tiny_space(df: pd.DataFrame | None = None, seed: int = 0, **kw) -> EmbeddingSpace:
    return EmbeddingSpace.fit(numbers() if df is None else df, seed=seed, progress=False, epochs=1, d_model=16, **kw)


def tiny_tables(seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    parents = pd.DataFrame({"customer_id": np.arange(40), "age": rng.normal(size=40), "score": rng.normal(size=40)})
    tx = pd.DataFrame({"customer_id": rng.integers(0, 40, 160).astype(float), "amount": rng.lognormal(size=160),
                       "qty": rng.integers(1, 5, 160).astype(float)})
    return {"customers": parents, "tx": tx}


@pytest.fixture(scope="module")
def space() -> EmbeddingSpace:
    return tiny_space()


@pytest.fixture(scope="module")
def predictor(space) -> Predictor:
    df = numbers()
    return Predictor.fit(space, df.assign(y=df["a"] > 0), target="y", epochs=2)


@pytest.fixture(scope="module")
def relational() -> tuple[RelationalSpace, dict]:
    tables = tiny_tables()
    rs = RelationalSpace.fit(tables, [JOIN], parent="customers", time_budget_s=1, child_time_budget_s=1, seed=0,
                             epochs=1, d_model=16, exclude=("customer_id",))
    return rs, tables


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def manifest(folder: Path) -> dict:
    return json.loads((folder / io.MANIFEST).read_text())


# ---------------------------------------------------------------------------------- manifest


def test_the_manifest_lists_every_file_with_its_hash_and_size(space, predictor, tmp_path):
    space.save(tmp_path / "es")
    predictor.save(tmp_path / "p")
    for folder in (tmp_path / "es", tmp_path / "p", tmp_path / "p" / "embedding_space"):
        doc = manifest(folder)
        on_disk = {k: v for k, v in files(folder).items() if k != io.MANIFEST}
        assert doc["format"] == io.MANIFEST_FORMAT and set(doc["files"]) == set(on_disk)
        for name, data in on_disk.items():
            assert doc["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        assert io.verify(folder) is True
    assert {"config.json", "model.safetensors", "codecs.json", "training_timeline.png"} <= set(manifest(tmp_path / "es")["files"])
    nested = manifest(tmp_path / "p")["files"]  # the predictor's manifest covers its space's files too
    assert {"embedding_space/model.safetensors", "embedding_space/manifest.json", "model.safetensors"} <= set(nested)


def test_saving_twice_gives_byte_identical_files(space, predictor, relational, tmp_path):
    rs, _ = relational
    for name, save in (("es", space.save), ("p", predictor.save), ("rs", lambda path: rs.save(path, figures=False))):
        save(tmp_path / f"{name}1")
        save(tmp_path / f"{name}2")
        first = files(tmp_path / f"{name}1")
        assert first == files(tmp_path / f"{name}2"), name
        save(tmp_path / f"{name}1")  # over itself: the same bytes again
        assert files(tmp_path / f"{name}1") == first, name
        assert "manifest.json" in first and b"_at" not in first["manifest.json"]  # no timestamps


def test_a_folder_saved_before_manifests_loads_with_a_warning(space, predictor, tmp_path, caplog):
    predictor.save(tmp_path / "p")
    for old in (tmp_path / "p" / io.MANIFEST, tmp_path / "p" / "embedding_space" / io.MANIFEST):
        old.unlink()
    with caplog.at_level(logging.WARNING, logger="featrix_model"):
        again = Predictor.load(tmp_path / "p")
    warned = [r.getMessage() for r in caplog.records if "manifest.json" in r.getMessage()]
    assert len(warned) == 2 and all("loaded unchecked" in w for w in warned), warned
    rows = numbers().head(10)
    assert again.predict(rows, explain=False) == predictor.predict(rows, explain=False)


# ---------------------------------------------------------------------------------- atomic save


def test_a_crash_mid_save_leaves_the_previous_artifact_intact(space, predictor, tmp_path, monkeypatch):
    dest = tmp_path / "es"
    space.save(dest)
    before = files(dest)
    other = tiny_space(seed=1)
    real = io.save_tensors

    def crash(path, *a, **k):  # the JSON files are written already, the weights half-way
        real(path, *a, **k)
        path.write_bytes(path.read_bytes()[:100])
        raise OSError("disk full")

    monkeypatch.setattr(io, "save_tensors", crash)
    with pytest.raises(OSError, match="disk full"):
        other.save(dest)
    with pytest.raises(OSError, match="disk full"):
        predictor.save(tmp_path / "p")  # the nested space's save fails inside the predictor's
    assert files(dest) == before
    assert [p.name for p in tmp_path.iterdir()] == ["es"]  # no half folder in place, no temporary one left
    assert EmbeddingSpace.load(dest).encode(numbers().head(5)).tobytes() == space.encode(numbers().head(5)).tobytes()


def test_a_killed_save_leaves_only_a_hidden_folder_that_the_next_save_removes(space, tmp_path, monkeypatch):
    """kill -9 runs no cleanup: simulated by a save that fails with its cleanup disabled."""
    dest = tmp_path / "es"
    space.save(dest)
    before = files(dest)
    monkeypatch.setattr(io.shutil, "rmtree", lambda *a, **k: None)
    monkeypatch.setattr(io, "write_manifest", lambda folder: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        tiny_space(seed=1).save(dest)
    monkeypatch.undo()
    left = [p for p in tmp_path.iterdir() if p.name != "es"]
    assert len(left) == 1 and left[0].name.startswith(".es.saving-")
    assert files(dest) == before and io.verify(dest)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a process id that no longer runs: the one that "was killed"
    name = left[0].name.split("-")
    stale = left[0].rename(tmp_path / "-".join([*name[:-2], str(dead.pid), name[-1]]))
    space.save(dest)
    assert not stale.exists() and [p.name for p in tmp_path.iterdir()] == ["es"]


def test_replacing_without_an_atomic_swap_renames_the_old_folder_aside(space, tmp_path, monkeypatch):
    dest = tmp_path / "es"
    tiny_space(seed=1).save(dest)
    monkeypatch.setattr(io, "_exchange", lambda a, b: False)  # an OS or file system without renameat2
    space.save(dest)
    assert [p.name for p in tmp_path.iterdir()] == ["es"] and io.verify(dest)
    assert EmbeddingSpace.load(dest).encode(numbers().head(5)).tobytes() == space.encode(numbers().head(5)).tobytes()


def test_save_refuses_to_replace_a_folder_of_other_files(space, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a saved model.*notes.txt"):
        space.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    # another program's config.json, hidden files only, or a saved model with a file of the user's beside it
    other = tmp_path / "app"
    (other / "src").mkdir(parents=True)
    (other / "config.json").write_text('{"app": 1}')
    (other / "thesis.tex").write_text("keep me")
    hidden = tmp_path / "repo"
    (hidden / ".git").mkdir(parents=True)
    (hidden / ".env").write_text("SECRET=1")
    saved = tmp_path / "saved"
    space.save(saved)
    (saved / "my_notes.md").write_text("keep me")
    for folder in (other, hidden, saved):
        before = files(folder)
        with pytest.raises(FileExistsError, match="not a saved model"):
            space.save(folder)
        assert files(folder) == before
    (saved / "my_notes.md").unlink()
    space.save(saved)  # a saved model alone is replaced


# ---------------------------------------------------------------------------------- live timeline


def test_the_live_timeline_never_lands_in_a_finished_artifact(space, tmp_path):
    dest = tmp_path / "es"
    space.save(dest)
    before = files(dest)
    retrained = EmbeddingSpace.fit(numbers(), seed=2, progress=False, epochs=2, d_model=16,
                                   output_dir=dest)  # retraining into the saved folder
    live = json.loads((dest / io.LIVE_TIMELINE).read_text())
    assert len(live["timeline"]) == 2  # on disk while training ran, beside the artifact
    assert {k: v for k, v in files(dest).items() if k != io.LIVE_TIMELINE} == before  # the artifact's files untouched
    assert io.verify(dest) and len(EmbeddingSpace.load(dest).timeline) == len(space.timeline)
    retrained.save(dest)
    assert not (dest / io.LIVE_TIMELINE).exists() and io.LIVE_TIMELINE not in manifest(dest)["files"]
    assert len(EmbeddingSpace.load(dest).timeline) == 2
    fresh = tmp_path / "training"  # the pipeline's way: a private folder, saved into, then published
    EmbeddingSpace.fit(numbers(), seed=2, progress=False, epochs=1, d_model=16, output_dir=fresh).save(fresh)
    assert io.LIVE_TIMELINE not in {p.name for p in fresh.iterdir()} and io.verify(fresh)


# ---------------------------------------------------------------------------------- determinism settings


def test_the_deterministic_setting_is_recorded_and_round_trips(space, predictor, relational, tmp_path):
    assert TrainingConfig().deterministic is True and TrainingConfig().allow_tf32 is False
    assert space.config.deterministic is True and space.config.allow_tf32 is False
    assert "deterministic" in space.config.reasons and any(d.startswith("deterministic: ") for d in space.decisions)
    space.save(tmp_path / "es", figures=False)
    recorded = json.loads((tmp_path / "es" / "config.json").read_text())["training_config"]
    assert recorded["deterministic"] is True and recorded["allow_tf32"] is False
    assert load_space(tmp_path / "es").config.deterministic is True
    off = auto_config(100, 3, **training_settings(deterministic=False, allow_tf32=True))
    assert off.deterministic is False and off.allow_tf32 is True and off.reasons["deterministic"] == "set by the caller"
    gpu = auto_config(100_000, 3, device="cuda", **training_settings(deterministic=False, allow_tf32=True))
    assert "may differ" in gpu.reasons["deterministic"] and "not FP32-exact" in gpu.reasons["allow_tf32"]
    assert "identical bytes" in auto_config(100_000, 3, device="cuda").reasons["deterministic"]
    assert relational[0].config.deterministic is True
    assert predictor.settings.deterministic is True and PredictorConfig("y").deterministic is True
    predictor.save(tmp_path / "p")
    assert json.loads((tmp_path / "p" / "config.json").read_text())["settings"]["deterministic"] is True
    assert Predictor.load(tmp_path / "p").settings.deterministic is True
    legacy = {k: v for k, v in predictor.settings.to_dict().items() if k != "deterministic"}
    assert PredictorConfig.from_dict(legacy).deterministic is True  # saved before the setting: the default


def test_cuda_determinism_changes_nothing_on_a_cpu():
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cuda.matmul.allow_tf32,
              torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    for det, tf32 in ((True, False), (False, True)):
        cuda_determinism("cpu", det, tf32)
        cuda_determinism(torch.device("cpu"), det, tf32)
    assert before == (torch.are_deterministic_algorithms_enabled(), torch.backends.cuda.matmul.allow_tf32,
                      torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)


def test_saved_relational_space_verifies_its_children_once(relational, tmp_path, monkeypatch):
    rs, tables = relational
    rs.save(tmp_path / "rs", figures=False)
    checked = []
    real = io.verify
    monkeypatch.setattr(io, "verify", lambda folder: checked.append(Path(folder).name) or real(folder))
    loaded = RelationalSpace.load(tmp_path / "rs", tables={"tx": tables["tx"]})
    assert checked == ["rs"]  # its manifest lists the child spaces' files: they are not hashed twice
    frame = tables["customers"]
    assert loaded.encode(frame).tobytes() == rs.encode(frame).tobytes()
