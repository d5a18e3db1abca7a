"""An on-disk tier under the sentence model's in-process LRU cache, shared across runs and processes.

A sentence vector costs about a millisecond of CPU per string; a pipeline that retrains, re-scores
or runs its steps in separate processes asks for the same strings again and again. This store keeps
each computed vector in a SQLite file so the next process reads the bytes instead of recomputing
them.

* **Same bytes, or not used.** A vector's bytes depend on the model files, the fixed batch shape,
  the torch build, the CPU kernel family and the torch thread count (``sentence._encode``). All of
  them name the file (``namespace``), so a vector is only ever read back by a process that would have
  computed the identical bytes; a model, torch or thread-count change opens a different file.
* **No text on disk.** Rows are keyed by an HMAC-SHA-256 of the string under a random key kept in
  the folder (so a guessed value cannot be confirmed from the file alone); the strings themselves
  (which may be private) are never written. The folder is 0700 and its files 0600.
* **Bounded.** Writing stops once the file reaches ``FEATRIX_SENTENCE_CACHE_MB`` (default 1024 MB,
  about 680,000 strings); reads go on. Delete the folder to reset it.
* **Never in the way.** A file that cannot be opened, read or written (read-only disk, corrupted
  file, another process holding the lock too long) turns the store off for this process with one
  warning naming the file; vectors are then computed as without it.

Settings: ``FEATRIX_SENTENCE_CACHE`` - the folder (default ``$XDG_CACHE_HOME/featrix`` or
``~/.cache/featrix``); ``off`` disables the store.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import platform
import sqlite3
import threading
import warnings
from pathlib import Path

import numpy as np
from sqlglot import exp


def _statements() -> tuple[str, str, str]:
    """The store's three statements, built with sqlglot (no SQL text is assembled by hand)."""
    def blob(name: str, constraint: exp.Expression) -> exp.ColumnDef:
        return exp.ColumnDef(this=exp.to_identifier(name), kind=exp.DataType.build("BLOB"),
                             constraints=[exp.ColumnConstraint(kind=constraint)])

    table = exp.to_table("vectors")
    create = exp.Create(this=exp.Schema(this=table, expressions=[
        blob("key", exp.PrimaryKeyColumnConstraint()), blob("vector", exp.NotNullColumnConstraint())]),
        kind="TABLE", exists=True)
    select = exp.select("vector").from_("vectors").where(exp.column("key").eq(exp.Placeholder()))
    insert = exp.Insert(this=exp.Schema(this=table.copy(), expressions=[exp.to_identifier("key"),
                                                                        exp.to_identifier("vector")]),
                        expression=exp.values([(exp.Placeholder(), exp.Placeholder())]), alternative="IGNORE")
    return tuple(e.sql(dialect="sqlite") for e in (create, select, insert))


_SCHEMA, _SELECT, _INSERT = _statements()

_lock = threading.Lock()
_conns: dict[str, sqlite3.Connection | None] = {}  # path -> connection, None once it failed
_pid = os.getpid()  # the process the connections belong to (a forked step process opens its own)
_stats = {"disk_hits": 0, "disk_writes": 0}


def folder() -> Path | None:
    """The store's folder, or None when ``FEATRIX_SENTENCE_CACHE=off``."""
    value = os.environ.get("FEATRIX_SENTENCE_CACHE", "").strip()
    if value.lower() in ("off", "0", "false", "no", "none"):
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "featrix"


def max_bytes() -> int:
    try:
        return max(0, int(float(os.environ.get("FEATRIX_SENTENCE_CACHE_MB", "1024")) * 2**20))
    except (ValueError, OverflowError):
        return 1024 * 2**20


def cpu_identity() -> str:
    """The CPU's model and feature flags (the math kernels torch picks depend on them), hashed."""
    text = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = [ln.strip() for ln in f.read().split("\n\n")[0].splitlines()
                     if ln.startswith(("vendor_id", "model name", "flags", "Features", "CPU implementer", "CPU part"))]
        text += "\n" + "\n".join(lines)
    except OSError:
        text += platform.processor()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def namespace(parts: dict[str, object]) -> str:
    """A short digest of everything a vector's bytes depend on (the file's name)."""
    text = "\n".join(f"{k}={parts[k]}" for k in sorted(parts))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


_salts: dict[str, bytes] = {}


def _salt(root: Path) -> bytes:
    """The folder's random HMAC key, created once (0600) by whichever process gets there first."""
    if str(root) not in _salts:
        path = root / "key"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
        except FileExistsError:
            pass
        salt = path.read_bytes()
        if len(salt) != 32:
            raise OSError(f"{path} is not a 32-byte key")
        _salts[str(root)] = salt
    return _salts[str(root)]


def _key(salt: bytes, text: str) -> bytes:
    return hmac.new(salt, text.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


def _connect(ns: str) -> tuple[sqlite3.Connection, bytes] | None:
    """The open file for namespace ``ns`` and its folder's HMAC key; None when off or unusable."""
    root = folder()
    if root is None:
        return None
    path = root / f"sentences-{ns}.sqlite"
    global _pid
    with _lock:
        if os.getpid() != _pid:  # forked: a SQLite connection must not cross a fork; left unclosed, unused
            _conns.clear()
            _pid = os.getpid()
        if str(path) in _conns:
            return _conns[str(path)]
        entry = None
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            salt = _salt(root)
            conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
            os.chmod(path, 0o600)
            conn.execute(_SCHEMA)
            conn.execute(_SELECT, (b"",)).fetchone()  # fails here if the file is not a database
            entry = (conn, salt)
        except (sqlite3.Error, OSError) as exc:
            _give_up(path, exc)
        _conns[str(path)] = entry
        return entry


def _path(ns: str) -> Path:
    return (folder() or Path(".")) / f"sentences-{ns}.sqlite"


def _give_up(path: Path, exc: BaseException) -> None:
    warnings.warn(f"sentence vector cache {path} is not usable ({type(exc).__name__}: {exc}); vectors are "
                  f"computed without it in this process. Delete the file, or set FEATRIX_SENTENCE_CACHE to "
                  f"another folder (or 'off').", RuntimeWarning, stacklevel=3)


def _fail(ns: str, exc: BaseException) -> None:
    path = _path(ns)
    with _lock:
        entry = _conns.get(str(path))
        _conns[str(path)] = None
    if entry is not None:
        entry[0].close()
    _give_up(path, exc)


def read(ns: str, texts: list[str], dim: int) -> dict[str, np.ndarray]:
    """Stored vectors for those of ``texts`` the store holds (distinct texts expected)."""
    entry = _connect(ns)
    if entry is None or not texts:
        return {}
    conn, salt = entry
    found: dict[str, np.ndarray] = {}
    try:
        with _lock:
            for text in texts:
                row = conn.execute(_SELECT, (_key(salt, text),)).fetchone()
                if row is None:
                    continue
                vec = np.frombuffer(row[0], dtype=np.float32)
                if vec.shape != (dim,):
                    raise sqlite3.DatabaseError(f"a stored vector has {vec.size} values, not {dim}")
                found[text] = vec
            _stats["disk_hits"] += len(found)
    except sqlite3.Error as exc:
        _fail(ns, exc)
        return {}
    return found


def write(ns: str, texts: list[str], vectors: np.ndarray) -> None:
    """Store freshly computed vectors (rows of float32 ``vectors`` for ``texts``) while the file stays
    under the size bound (rows past it are not stored); a string already stored is left as it is
    (its bytes are the same by construction)."""
    entry = _connect(ns)
    if entry is None or not texts:
        return
    conn, salt = entry
    try:
        with _lock:
            room = (max_bytes() - _path(ns).stat().st_size) // (2 * 4 * len(vectors[0]) + 64)  # ~2× a row: B-tree pages
            rows = [(_key(salt, t), np.ascontiguousarray(v, dtype=np.float32).tobytes())
                    for t, v in zip(texts[:max(0, room)], vectors)]
            if rows:
                with conn:  # one transaction: all rows or none
                    conn.executemany(_INSERT, rows)
                _stats["disk_writes"] += len(rows)
    except (sqlite3.Error, OSError) as exc:
        _fail(ns, exc)


def stats() -> dict[str, int]:
    with _lock:
        return dict(_stats)


def reset() -> None:
    """Close every open file and reset counters (tests; a changed ``FEATRIX_SENTENCE_CACHE``)."""
    with _lock:
        for entry in _conns.values():
            if entry is not None:
                entry[0].close()
        _conns.clear()
        _salts.clear()
        for k in _stats:
            _stats[k] = 0
