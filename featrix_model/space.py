"""``EmbeddingSpace``: the foundational model of one table (spec §2.1, Part II §5–§15).

    es = EmbeddingSpace.fit(df)            # zero configuration; every choice logged with its reason
    es.encode(df); es.encode_short(df); es.mutual_information(); es.similar(row, k=10)
    es.column_report(); es.timeline; es.save(path); EmbeddingSpace.load(path)
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from featrix_model import inputs, io
from featrix_model.codecs.base import CodecContext
from featrix_model.building import build_network, training_settings, use_threads  # noqa: F401 (re-exported)
from featrix_model.encoding import encode_variants
from featrix_model.columns import ColumnPlan, default_column_types, plan_columns
from featrix_model.network import EmbeddingNetwork
from featrix_model.groups import detect_groups, groups_config, groups_from_config
from featrix_model.pairs import select_pairs
from featrix_model.training.config import TrainingConfig, auto_config
from featrix_model.training.losses import marginal_losses
from featrix_model.training import parallel
from featrix_model.training.split import split_divergence, split_warnings
from featrix_model.training.trainer import Trainer, cuda_determinism, gather

log = logging.getLogger("featrix_model")
ENCODE_CHUNK = 16384


class EmbeddingSpace:
    """A trained embedding space. Build with ``EmbeddingSpace.fit`` or ``EmbeddingSpace.load``."""

    kind = "table"  # written to config.json; ``featrix_model.loading.load_space`` picks the class from it

    def __init__(self, plan: ColumnPlan, net: EmbeddingNetwork, config: TrainingConfig, pairs: list, *,
                 timeline: dict | None = None, mi: pd.DataFrame | None = None, pair_ranking: list | None = None,
                 train_embeddings: np.ndarray | None = None, training_rows: pd.DataFrame | None = None,
                 decisions: list[str] | None = None):
        self.plan, self.net, self.config, self.pairs = plan, net, config, pairs
        self.timeline_ = timeline or {"metadata": {}, "timeline": [], "corrective_actions": []}
        self.mi_ = mi
        self.pair_ranking_ = pair_ranking or []
        self.train_embeddings_ = train_embeddings
        self.training_rows_ = training_rows
        self.decisions = decisions or []
        self.groups_: list[dict] = []  # hybrid column groups (featrix_model.groups)

    # ------------------------------------------------------------------ fit

    @classmethod
    def fit(cls, df: pd.DataFrame, time_budget_s: float | None = None, seed: int = 0, progress: bool = True, *,
            exclude: tuple[str, ...] = (), keep: tuple[str, ...] = (), column_types: dict | None = None,
            keep_training_rows: bool = True, movie: bool = False, config: TrainingConfig | None = None,
            output_dir: str | Path | None = None, device: str | None = None, threads: int | None = None,
            epochs: int | None = None, max_epochs: int | None = None, lr: float | None = None,
            batch_size: int | None = None, d_model: int | None = None, deterministic: bool | None = None,
            allow_tf32: bool | None = None, analysis: dict | None = None,
            checkpoint_dir: str | Path | None = None, train_rows: np.ndarray | None = None) -> "EmbeddingSpace":
        """Train on ``df`` with zero configuration.

        Every automatic choice is logged with its reason; ``epochs``, ``max_epochs`` (a cap below what
        the budget allows), ``lr``, ``batch_size``, ``d_model`` or a whole ``config`` replace it and are
        logged as set by the caller. ``threads``: torch's thread count (a recorded setting: it changes
        result bytes). ``deterministic`` (default on) and ``allow_tf32`` (default off): CUDA numerics,
        recorded in the config (``training.trainer.cuda_determinism``; nothing changes on a CPU).
        ``analysis``: {column: (profile, verdict)} computed earlier for these values, so columns are
        not profiled twice. With ``output_dir``, ``timeline.partial.json`` there is rewritten
        every epoch (a later ``save`` into that folder replaces it with the artifact). With
        ``checkpoint_dir``, every epoch is checkpointed there, and a fit given the same folder again
        (after a crash or a kill) resumes after the last sound checkpoint and ends with the weights an
        uninterrupted fit would have (``training.checkpoint``); delete the folder once the space is saved.
        ``train_rows``: a boolean mask of the rows the space learns from, codecs included (default all),
        e.g. to keep out rows a predictor will be measured on; ``analysis`` is then of all of ``df``."""
        started = time.monotonic()
        inputs.check_table(df)
        df, rows_in = df.reset_index(drop=True), len(df)
        note = []
        if train_rows is not None:
            df, note = inputs.chosen_rows(df, train_rows, "the table")
        threads = use_threads(threads)  # before the codecs: sentence embeddings depend on it too
        plan = plan_columns(df, exclude=exclude, keep=keep, column_types=column_types,
                            context=codec_context(seed, column_types), analysis=analysis, analysis_rows=rows_in)
        plan.decisions[:0] = note
        settings = training_settings(config, threads=threads, epochs=epochs, max_epochs=max_epochs, lr=lr,
                                     batch_size=batch_size, d_model=d_model, deterministic=deterministic,
                                     allow_tf32=allow_tf32)
        return cls._train(df, plan, settings, time_budget_s=time_budget_s, seed=seed, progress=progress,
                          training_rows=df[plan.all_columns] if keep_training_rows else None, movie=movie,
                          output_dir=output_dir, device=device, started=started, checkpoint_dir=checkpoint_dir)

    @classmethod
    def _train(cls, df: pd.DataFrame, plan: ColumnPlan, settings: dict, *, time_budget_s, seed, progress,
               training_rows, movie, output_dir, device, started,
               pair_columns: list[str] | None = None, checkpoint_dir=None) -> "EmbeddingSpace":
        """Configure, train and wrap a network for a fitted ``plan`` (shared with ``RelationalSpace``).
        ``settings``: the caller's training settings (``training_settings``); ``pair_columns``: the
        columns relationship pairs may be drawn from (default: all)."""
        overrides = dict(settings)
        threads = use_threads(overrides.pop("threads", None))
        decisions = list(plan.decisions)
        if len(plan.columns) < 2:
            raise ValueError(f"Only {len(plan.columns)} usable column(s) left after filtering "
                             f"({'; '.join(plan.decisions) or 'none excluded'}): an embedding space needs at least 2.")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        cfg = auto_config(len(df), len(plan.columns), device=device, time_budget_s=time_budget_s, seed=seed,
                          threads=threads, **overrides)
        cfg.world_size = parallel.world()[0]
        if cfg.world_size > 1:
            cfg.reasons["world_size"] = (f"{cfg.world_size} processes train data-parallel (torch.distributed, "
                                         f"{torch.distributed.get_backend()}): each takes 1/{cfg.world_size} of every "
                                         "batch and the gradients are averaged, so a step still sees the whole batch")
        decisions += [f"{k}: {v}" for k, v in cfg.reasons.items()]
        cuda_determinism(device, cfg.deterministic, cfg.allow_tf32)  # before the network meets the device
        train_df, sampled_out = df, 0
        if cfg.max_train_rows and cfg.max_train_rows < len(df) * (1 - cfg.val_fraction) and not cfg.every_row_each_epoch:
            n_keep = min(len(df), int(math.ceil(cfg.max_train_rows / (1 - cfg.val_fraction))))
            train_df = df.sample(n=n_keep, random_state=seed).reset_index(drop=True)
            sampled_out = len(df) - n_keep
            decisions.append(f"training rows: a seeded sample of {n_keep:,} of {len(df):,} rows is tensorised for "
                             "training; codecs were fitted on all rows and every row can be encoded")
        data = plan.transform(train_df)
        pair_cols = [c for c in plan.columns if pair_columns is None or c in pair_columns]
        pairs, ranking = select_pairs(df, pair_cols, cfg.max_pairs, seed, cfg.relationship_pool)
        pairs = [(plan.columns.index(pair_cols[i]), plan.columns.index(pair_cols[j])) for i, j in pairs]
        if pairs:
            decisions.append(("relationship candidates: " if len(pairs) > cfg.max_pairs else "relationship pairs: ")
                             + ", ".join(f"{plan.columns[i]}×{plan.columns[j]}" for i, j in pairs))
        groups = detect_groups(df, plan.columns, {c: plan.info[c]["semantic_type"] for c in plan.columns})
        decisions += [f"column group ({g['kind']}): {', '.join(g['columns'])} share a group embedding — {g['reason']}"
                      for g in groups]
        for d in decisions:
            log.info(d)
        net = build_network(plan, cfg, pairs, groups).to(device)
        movie_rows = torch.arange(min(len(df), 500)) if movie else None
        timeline_path = None
        if output_dir is not None:  # the live timeline: never a file of a saved artifact (save() replaces the folder)
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            timeline_path = Path(output_dir) / io.LIVE_TIMELINE
        trainer = Trainer(net, cfg, data, len(train_df), log=log.info, timeline_path=timeline_path,
                          checkpoint_dir=checkpoint_dir)
        timeline = trainer.fit(progress=progress, movie_rows=movie_rows)
        timeline["metadata"]["fit_seconds"] = round(time.monotonic() - started, 2)
        kl = split_divergence(train_df, plan.columns, *trainer.initial_split)
        timeline["metadata"]["split_kl"] = kl
        for line in split_warnings(kl, len(trainer.initial_split[1])):
            (log.warning if line.startswith("[WARN]") else log.info)(line)
            decisions.append(line)
        timeline["metadata"]["n_rows_in"] = len(df)  # = train + validation + sampled out, counted where each happens
        timeline["metadata"]["n_rows_sampled_out"] = sampled_out + timeline["metadata"].get("n_rows_sampled_out", 0)
        es = cls(plan, net, cfg, pairs, timeline=timeline, pair_ranking=ranking, decisions=decisions,
                 training_rows=training_rows)
        es.groups_ = groups
        es.column_losses_ = trainer.column_losses.tolist()
        es.train_embeddings_ = es._encode_prepared(df, 0)
        es.mi_ = es._mutual_information(data, len(train_df))
        return es

    # ------------------------------------------------------------------ encode

    def visibility(self, n: int, hide: tuple[str, ...] | list[str] = ()) -> torch.Tensor:
        """(n, C) bool: every column visible except ``hide`` — hidden columns get the MARGINAL token,
        exactly as masked columns in training (spec §8), so hiding a column is in-distribution."""
        visible = torch.ones(n, len(self.plan.columns), dtype=torch.bool)
        for c in hide:
            if c in self.plan.columns:
                visible[:, self.plan.columns.index(c)] = False
        return visible

    def attach(self, tables: dict) -> "EmbeddingSpace":
        """Give the space the other tables it reads rows from: a table space reads none."""
        return self

    def fine_tune_reason(self) -> str | None:
        """Why predictors on this space should fine-tune it by default (None: keep it frozen)."""
        return None

    def prepare(self, df: pd.DataFrame | pd.Series | dict, hide=()) -> pd.DataFrame:
        """Rows in the form the space encodes: a frame with every column of the plan (absent ones as
        missing values). Encoding prepared rows again is cheap, so callers that encode the same rows
        many times (importance by occlusion, fine-tuning) prepare them once."""
        if isinstance(df, dict):
            df = pd.DataFrame([df])
        elif isinstance(df, pd.Series):
            df = df.to_frame().T
        missing = [c for c in self.plan.columns if c not in df.columns]
        if [c for c in missing if c not in hide]:
            log.warning("columns %s are not in the input: encoded as missing values", [c for c in missing if c not in hide])
        if missing:
            df = df.assign(**{c: None for c in missing})
        return df.reset_index(drop=True)

    def transform(self, df: pd.DataFrame) -> dict:
        """Codec tensors of ``df``'s rows (what the network takes; used by fine-tuning predictors)."""
        return self.plan.transform(self.prepare(df))

    def _encode_frame(self, df, which: int, hide=()) -> np.ndarray:
        return self._encode_prepared(self.prepare(df, hide), which, hide)

    def _encode_prepared(self, df: pd.DataFrame, which: int, hide=()) -> np.ndarray:
        return self._encode_chunks(df, [tuple(hide)])[which][0]

    def _encode_chunks(self, df: pd.DataFrame, hides: list[tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """Row (V, n, d_model) and short (V, n, 3) embeddings of prepared rows under each set of hidden
        columns: transformed and encoded ``ENCODE_CHUNK`` rows at a time so memory stays bounded, in
        fixed-shape forwards (``featrix_model.encoding``: a row gets the same bytes alone or among others)."""
        visible = torch.stack([self.visibility(1, h)[0] for h in hides])
        parts = [encode_variants(self.net, self.plan.transform(chunk), len(chunk), visible)
                 for chunk in (df.iloc[s:s + ENCODE_CHUNK] for s in range(0, len(df), ENCODE_CHUNK))]
        if not parts:
            return np.zeros((len(hides), 0, self.d_model), np.float32), np.zeros((len(hides), 0, 3), np.float32)
        return np.concatenate([p[0] for p in parts], axis=1), np.concatenate([p[1] for p in parts], axis=1)

    def encode(self, df: pd.DataFrame, hide: tuple[str, ...] = ()) -> np.ndarray:
        """(n, d_model) float32 row embeddings, L2-normalised. ``hide`` masks columns (e.g. a target)."""
        return self._encode_frame(df, 0, hide)

    def encode_variants(self, df: pd.DataFrame, hides: list[tuple[str, ...]]) -> np.ndarray:
        """(len(hides), n, d_model): the rows of ``df`` encoded once per set of hidden columns — one
        transform and one pass of the column encoders, the joint encoder per set — with exactly the
        bytes ``encode(df, hide=h)`` gives for each ``h``."""
        return self._encode_chunks(self.prepare(df, tuple(c for h in hides for c in h)), hides)[0]

    def encode_short(self, df: pd.DataFrame) -> np.ndarray:
        """(n, 3) short embeddings on the unit sphere (spec §15)."""
        return self._encode_frame(df, 1)

    def similar(self, row_or_df, k: int = 10) -> pd.DataFrame:
        """Nearest training rows (cosine similarity of embeddings), best first, for each query row."""
        if self.train_embeddings_ is None:
            raise RuntimeError("this space was saved without training embeddings; similar() needs them.")
        q = self.encode(self.prepare(row_or_df))
        scores = q @ self.train_embeddings_.T
        out = []
        for qi, row in enumerate(scores):
            top = np.argsort(-row, kind="stable")[:k]
            part = pd.DataFrame({"query": qi, "row": top, "score": row[top]})
            if self.training_rows_ is not None:
                part = pd.concat([part, self.training_rows_.iloc[top].reset_index(drop=True)], axis=1)
            out.append(part)
        return pd.concat(out, ignore_index=True)

    # ------------------------------------------------------------------ introspection

    @torch.no_grad()
    def _mutual_information(self, data, n: int) -> pd.DataFrame:
        """MI[i, j] in bits: what column i alone tells about column j (spec §4.5, §9: log(B) − loss)."""
        self.net.eval()
        g = torch.Generator().manual_seed(self.config.seed + 11)
        rows = torch.randperm(n, generator=g)[: min(n, 512)]
        batch = gather(data, rows, self.net.device)
        cols_full, cols_short = self.net.encode_columns(batch)
        present = self.net.present(batch)
        B, C = present.shape
        mi = np.zeros((C, C))
        for i in range(C):
            visible = torch.zeros(B, C, dtype=torch.bool, device=self.net.device)
            visible[:, i] = True
            emb, _ = self.net.joint(cols_full, visible)
            pf, ps = self.net.predict_columns(emb)
            loss = marginal_losses(pf, ps, cols_full, cols_short, present, self.config.temperature)
            mi[i] = (math.log(B) - loss.cpu().numpy()) / math.log(2)
        cols = self.plan.columns
        return pd.DataFrame(np.nan_to_num(mi, nan=0.0).clip(min=0.0), index=cols, columns=cols)

    def mutual_information(self) -> pd.DataFrame:
        """MI[i, j] = bits of information column i provides about column j (asymmetric)."""
        return self.mi_.copy()

    def column_report(self) -> pd.DataFrame:
        rows = []
        mi = self.mi_
        for name, info in self.plan.info.items():
            row = {"column": name, "type": info["semantic_type"], "type_reason": info["type_reason"],
                   "excluded": info["excluded"], "reason": info["reason"]}
            if name in self.plan.columns:
                i = self.plan.columns.index(name)
                row["codec"] = self.plan.codecs[name].report()
                row["encoder"] = self.net.encoders[i].report()
                losses = getattr(self, "column_losses_", None)
                row["marginal_loss"] = None if losses is None else losses[i]
                if mi is not None:
                    others = mi.drop(index=name)[name]
                    row["mi_from_others_bits"] = float(others.max()) if len(others) else 0.0
                    row["best_predictor"] = str(others.idxmax()) if len(others) else None
            rows.append(row)
        return pd.DataFrame(rows)

    def relationship_report(self) -> pd.DataFrame:
        """The relationship pairs (spec §6): one row per candidate with importance, lcb, lift (and its
        standard error, per-direction lifts, paired/unpaired epochs), whether it is active in the saved
        model and protected; ``.attrs["validation"]`` holds the scoring's self-validation (Spearman ρ,
        quintile lifts, false positives/negatives, warnings) and ``.attrs["swaps"]`` the per-epoch log."""
        found = self.timeline_.get("relationships")
        if found:
            out = pd.DataFrame(found["pairs"])
            out.attrs.update(validation=found["validation"], swaps=found["swaps"])
            return out
        cols = self.plan.columns
        active = self.net.joint.relationships.active.tolist()
        out = pd.DataFrame([{"left": cols[i], "right": cols[j], "importance": None, "lcb": None, "lift": None,
                             "active": bool(on), "protected": False} for (i, j), on in zip(self.pairs, active)])
        why = self.config.reasons.get("relationship_pool", "no relationship pruning in this fit")
        out.attrs.update(validation={"spearman_rho": None, "warnings": [], "skipped": why}, swaps=[])
        return out

    def extend(self, df: pd.DataFrame, **kw) -> "EmbeddingSpace":
        """A new space with ``df``'s new columns added (spec §19); this one is unchanged
        (``featrix_model.extend.extend_space``: new encoders first, then a joint fine-tune)."""
        from featrix_model.extend import extend_space  # extend imports this module

        return extend_space(self, df, **kw)

    @property
    def timeline(self) -> list[dict]:
        return self.timeline_["timeline"]

    @property
    def d_model(self) -> int:
        return self.net.joint.d_model

    # ------------------------------------------------------------------ save / load

    def save(self, path: str | Path, figures: bool = True) -> Path:
        """Write the space to the folder ``path`` atomically (``featrix_model.io.saving``): the folder
        is replaced as a whole, with a ``manifest.json`` of every file's sha256 and size."""
        with io.saving(path) as folder:
            self._write(folder, figures)
        return Path(path)

    def _write(self, path: Path, figures: bool) -> None:
        """The artifact's files, into the (temporary) folder ``path``."""
        io.write_json(path / "config.json", {
            "format": io.FORMAT, "version": io.VERSION, "kind": self.kind, "plan": self.plan.to_config(),
            "training_config": self.config.to_dict(), "pairs": [list(p) for p in self.pairs],
            "pair_ranking": self.pair_ranking_, "decisions": self.decisions, "groups": groups_config(self.groups_),
            "column_losses": getattr(self, "column_losses_", None)})
        io.write_json(path / "codecs.json", self.plan.codecs_config())
        io.write_json(path / "timeline.json", {k: v for k, v in self.timeline_.items() if k != "movie"})
        io.write_json(path / "mutual_information.json", {"columns": list(self.mi_.columns), "bits": self.mi_.values})
        extra = {"train_embeddings": torch.from_numpy(self.train_embeddings_)} if self.train_embeddings_ is not None else {}
        io.save_tensors(path / "model.safetensors", self.net.state_dict(), extra)
        if self.training_rows_ is not None:
            self.training_rows_.to_parquet(path / "training_rows.parquet", index=False)
        if figures:
            self.write_figures(path)

    def write_figures(self, folder: str | Path) -> dict[str, Path]:
        from featrix_model import viz

        folder = Path(folder)
        out = {"timeline": viz.plot_timeline(self.timeline_, folder / "training_timeline.png"),
               "mutual_information": viz.plot_mutual_information(self.mi_, folder / "mutual_information.png")}
        if self.train_embeddings_ is not None:
            short = self.train_embeddings_[:2000, :3]
            out["sphere"] = viz.sphere_html(short / np.linalg.norm(short, axis=1, keepdims=True).clip(1e-8),
                                            folder / "sphere.html", title="Row embeddings (short, 3D)")
        if self.timeline_.get("movie"):
            frames = [np.asarray(f) for f in self.timeline_["movie"]]
            out["movie"] = viz.movie_html(frames, folder / "training_movie.html",
                                          epochs=[e["epoch"] for e in self.timeline][: len(frames)])
        return out

    @classmethod
    def load(cls, path: str | Path, column_types: dict | None = None, tables: dict | None = None, *,
             verify: bool = True) -> "EmbeddingSpace":
        """Load a saved table space (``featrix_model.loading.load_space`` loads any kind of space).
        ``tables`` is for relational spaces (their child tables); a table space reads none. The folder
        is first checked against its manifest (``verify=False``: a caller that checked an enclosing
        artifact's manifest already); anything wrong with it is an ``io.ArtifactError``."""
        path = Path(path)
        if verify:
            io.verify(path)
        config = io.read_json(path / "config.json")
        if config.get("format") != io.FORMAT:
            raise io.ArtifactError(path, "config.json", f"names format {config.get('format')!r}, not {io.FORMAT!r}: "
                                   "the folder holds something other than an embedding space",
                                   "load it with the class that saved it")
        if config.get("version", 1) < io.VERSION:
            raise io.ArtifactError(path, "config.json", f"was written by an earlier version of featrix_model (artifact "
                                   f"version {config.get('version', 1)}, this one reads {io.VERSION}): its network "
                                   "has another shape", "fit the space again")
        if io.space_kind(path, config) != cls.kind:
            raise TypeError(f"{path} holds a {io.space_kind(path, config)} space, not a {cls.kind} space: "
                            "load it with featrix_model.load_space(path).")
        plan_doc, training, pair_list = io.fields(config, path / "config.json", "plan", "training_config", "pairs")
        plan = _plan(path, plan_doc, io.read_json(path / "codecs.json"), column_types, training.get("seed", 0))
        cfg = TrainingConfig.from_dict(training)
        pairs = [tuple(p) for p in pair_list]
        groups = groups_from_config(config.get("groups") or [], plan.columns)
        net = build_network(plan, cfg, pairs, groups)
        state, extra = io.load_tensors(path / "model.safetensors")
        io.load_weights(net, state, path / "model.safetensors")
        net.eval()
        mi_path = path / "mutual_information.json"
        mi_columns, bits = io.fields(io.read_json(mi_path), mi_path, "columns", "bits")
        mi = pd.DataFrame(np.array(bits, dtype=float), index=mi_columns, columns=mi_columns)
        es = cls(plan, net, cfg, pairs, timeline=io.read_json(path / "timeline.json"), mi=mi,
                 pair_ranking=config.get("pair_ranking"), decisions=config.get("decisions"),
                 train_embeddings=extra["train_embeddings"].numpy() if "train_embeddings" in extra else None,
                 training_rows=_training_rows(path / "training_rows.parquet"))
        es.column_losses_ = config.get("column_losses")
        es.groups_ = groups
        return es


def _training_rows(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow's errors for a damaged file
        raise io.ArtifactError(path.parent, path.name, f"cannot be read as Parquet ({type(e).__name__}: {e})") from None


def _plan(path: Path, plan: dict, codecs: dict, column_types: dict | None, seed: int) -> ColumnPlan:
    """The saved column plan: config.json's plan with codecs.json's codecs (one per column)."""
    missing = [c for c in plan.get("columns", []) if c not in codecs]
    if missing:
        raise io.ArtifactError(path, "codecs.json", f"has no codec for column(s) {missing} that config.json lists")
    try:
        return ColumnPlan.from_config(plan, codecs, column_types, codec_context(seed, column_types))
    except (KeyError, TypeError, IndexError, AttributeError) as e:
        raise io.ArtifactError(path, "codecs.json", "does not describe the columns config.json lists "
                               f"({type(e).__name__}: {e})") from None


def codec_context(seed: int, column_types: dict | None = None) -> CodecContext:
    """What this space's codecs get: the seed, and the class (and column types) that a JSON column's
    child space is trained with — a plain table space."""
    return CodecContext(seed=seed, space_class=EmbeddingSpace, column_types=column_types or default_column_types())
