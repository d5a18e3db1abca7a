"""The house's safety rules, read from the source: no pickle (nor what pickles underneath:
``torch.save``, joblib, dill, cloudpickle), no ``torch.load`` without ``weights_only=True``, and no
SQL built from strings (f-strings, ``%`` or ``.format`` around SQL words, or literal SQL handed to
a driver): SQL is built with sqlglot and rendered."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO

SCANNED = ("featrix_model", "featrix_pipeline", "assets", "bench", "scripts")
PICKLERS = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|COPY|ATTACH|PRAGMA|INSTALL|LOAD|GRANT)\s+"
                       r"(\*|[A-Za-z_\"(])|\b(FROM|WHERE|JOIN|VALUES|INTO)\s+[\"A-Za-z_({]", re.IGNORECASE)
SQL_STATEMENT = re.compile(r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|CREATE|DROP|ALTER|COPY|ATTACH|PRAGMA)\b"
                           r"[^.!?]*\b(FROM|TABLE|INTO|SET|TO|DATABASE)?")  # SQL keywords in capitals
DRIVER_CALLS = {"execute", "executemany", "exec_driver_sql", "text", "sql", "read_sql", "read_sql_query"}


def sources() -> dict[str, str]:
    return {str(p.relative_to(REPO)): p.read_text() for pkg in SCANNED for p in sorted((REPO / pkg).rglob("*.py"))}


def _is_sql(text: str) -> bool:
    return bool(SQL_WORDS.search(text)) and not text.rstrip().endswith((".", ":", "!", "?"))


def violations(path: str, text: str) -> list[str]:
    out = []
    tree = ast.parse(text)
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            out += [f"{where}: imports {a.name}" for a in node.names if a.name.split(".")[0] in PICKLERS]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PICKLERS:
            out.append(f"{where}: imports from {node.module}")
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name.endswith(("read_pickle", "to_pickle")) or name == "__import__" and node.args and \
                    isinstance(node.args[0], ast.Constant) and str(node.args[0].value).split(".")[0] in PICKLERS:
                out.append(f"{where}: {name} pickles")
            if name in ("np.load", "numpy.load") and any(k.arg == "allow_pickle" and not (
                    isinstance(k.value, ast.Constant) and k.value.value is False) for k in node.keywords):
                out.append(f"{where}: {name} with allow_pickle")
            if name in ("torch.save", "torch.serialization.save"):
                out.append(f"{where}: {name} pickles; write safetensors")
            if name in ("torch.load", "torch.serialization.load"):
                weights_only = [k for k in node.keywords if k.arg == "weights_only"]
                if not weights_only or not (isinstance(weights_only[0].value, ast.Constant)
                                            and weights_only[0].value.value is True):
                    out.append(f"{where}: {name} without weights_only=True")
            if isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
                    and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str) \
                    and _is_sql(node.func.value.value):
                out.append(f"{where}: str.format builds SQL; build it with sqlglot")
            attr = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if attr in DRIVER_CALLS and node.args:
                arg = node.args[0]
                literal = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
                if isinstance(arg, ast.JoinedStr) or (literal and _is_sql(literal)):
                    out.append(f"{where}: SQL text handed to {attr}(); build it with sqlglot")
        elif isinstance(node, ast.JoinedStr):
            literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            holes = "".join("{}" if not isinstance(v, ast.Constant) else v.value for v in node.values)
            if _is_sql(holes) and re.search(r"(SELECT|FROM|WHERE|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|COPY)"
                                            r"[^a-z]*\{\}", holes):
                out.append(f"{where}: an f-string builds SQL ({literal[:50]!r}); build it with sqlglot")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) \
                and isinstance(node.left.value, str) and _is_sql(node.left.value):
            out.append(f"{where}: %-formatting builds SQL; build it with sqlglot")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and any(
                isinstance(side, ast.Constant) and isinstance(side.value, str) and SQL_STATEMENT.search(side.value)
                for side in (node.left, node.right)):
            out.append(f"{where}: + builds SQL; build it with sqlglot")
    return out


def test_no_pickle_no_unsafe_torch_load_no_sql_from_strings():
    found = [v for path, text in sources().items() for v in violations(path, text)]
    assert not found, "\n".join(found)


def test_the_scanner_finds_what_it_forbids():
    planted = '''
import pickle
from joblib import dump
import torch
torch.save(x, "m.pt")
torch.load("m.pt")
torch.load("m.pt", weights_only=False)
con.execute(f"SELECT * FROM {table}")
con.execute("DROP TABLE planes")
sql = f"SELECT {col} FROM t"
q = "DELETE FROM %s" % name
q = "INSERT INTO {} VALUES (1)".format(name)
con.execute("SELECT * FROM " + table)
frame = pd.read_pickle("x.pkl")
arr = np.load("x.npy", allow_pickle=True)
mod = __import__("pickle")
'''
    found = violations("planted.py", planted)
    assert len(found) == 15, "\n".join(found)
    clean = '''
import torch
torch.load("m.pt", weights_only=True)
con.execute(select.sql(dialect="duckdb"))
msg = f"table {name} has no rows: select a larger range."
raise ValueError(f"the rows from {table} could not be read")
arr = np.load("x.npy")
msg = "Select the rows " + "from a table."
'''
    assert violations("clean.py", clean) == []


def test_every_scanned_package_exists():
    assert all(Path(REPO / pkg).is_dir() for pkg in SCANNED)
