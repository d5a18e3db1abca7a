"""The sentence vectors' on-disk store: a second process reads the bytes instead of recomputing
them, never across a thread-count change, never storing the text, and never in the way."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from featrix_model import sentence, sentence_store

TEXTS = ["a delayed evening departure from JFK", "LaGuardia to Chicago, on time", "cancelled: weather"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def store(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FEATRIX_SENTENCE_CACHE", str(tmp_path / "cache"))
    sentence.clear_cache()
    yield tmp_path / "cache"
    monkeypatch.setenv("FEATRIX_SENTENCE_CACHE", "off")
    sentence.clear_cache()


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_vectors_come_back_from_disk_with_the_bytes_the_model_gives(store, model_calls):
    first = sentence.embed(TEXTS)
    assert len(model_calls) == 1 and sentence.cache_info()["disk_writes"] == len(TEXTS)
    sentence.clear_cache()  # a new process's memory: only the disk remembers
    again = sentence.embed(TEXTS + [TEXTS[0]])
    assert len(model_calls) == 1, "the store was not read"
    assert sentence.cache_info()["disk_hits"] == len(TEXTS)
    assert _digest(again[:3]) == _digest(first) and _digest(again[3]) == _digest(first[0])
    files = list(store.glob("sentences-*.sqlite"))
    assert len(files) == 1
    raw = b"".join(p.read_bytes() for p in store.iterdir())
    assert all(t.encode() not in raw for t in TEXTS), "the strings themselves reached the disk"
    assert all(hashlib.sha256(t.encode()).digest() not in raw for t in TEXTS), "keys a guess could confirm"
    assert {oct(p.stat().st_mode & 0o777) for p in store.iterdir() if p.suffix != ".sqlite-journal"} == {"0o600"}
    assert oct(store.stat().st_mode & 0o777) == "0o700"


def test_another_process_reads_the_store_instead_of_running_the_model(store):
    here = sentence.embed(TEXTS)
    code = ("import hashlib, numpy as np, torch; torch.set_num_threads(1)\n"
            "from featrix_model import sentence\n"
            f"v = sentence.embed({TEXTS!r})\n"
            "print(sentence.cache_info()['strings_encoded'], hashlib.sha256(v.tobytes()).hexdigest())\n")
    env = {**os.environ, "FEATRIX_SENTENCE_CACHE": str(store), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO,
                         timeout=300, check=True).stdout.split()
    assert out == ["0", _digest(here)]


def test_a_different_thread_count_never_reads_the_other_counts_vectors(store, model_calls):
    sentence.embed(TEXTS)
    before = torch.get_num_threads()
    sentence.clear_cache()
    torch.set_num_threads(2 if before == 1 else 1)
    try:
        sentence.embed(TEXTS)
    finally:
        torch.set_num_threads(before)
    assert len(model_calls) == 2, "vectors computed with another thread count were reused"
    assert len(list(store.glob("sentences-*.sqlite"))) == 2


def test_a_corrupted_store_warns_once_and_vectors_are_still_right(store, model_calls):
    expected = sentence.embed(TEXTS)
    sentence.clear_cache()
    for path in store.glob("sentences-*"):
        path.write_bytes(b"this is not a database" * 100)
    with pytest.warns(RuntimeWarning, match="sentence vector cache .*sentences-.*not usable"):
        got = sentence.embed(TEXTS)
    assert _digest(got) == _digest(expected) and len(model_calls) == 2


def test_off_writes_nothing_and_the_size_bound_stops_writing(store, monkeypatch, model_calls):
    monkeypatch.setenv("FEATRIX_SENTENCE_CACHE", "off")
    sentence.clear_cache()
    sentence.embed(TEXTS)
    assert not store.exists()
    monkeypatch.setenv("FEATRIX_SENTENCE_CACHE", str(store))
    monkeypatch.setenv("FEATRIX_SENTENCE_CACHE_MB", "0")
    sentence.clear_cache()
    sentence.embed(TEXTS)
    assert sentence_store.stats()["disk_writes"] == 0
    sentence.clear_cache()
    sentence.embed(TEXTS)
    assert len(model_calls) == 3  # nothing stored, so every process computes again
