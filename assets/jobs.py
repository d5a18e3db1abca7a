"""The two kinds of run, kept apart.

* ``refresh_and_score`` reads the warehouse, profiles, checks the joins, measures drift, embeds and
  scores what needs it, and writes predictions back. It never trains: the spaces and predictors it
  uses are the ones the last retrain left.
* ``retrain`` materializes every asset; each space, relational space and predictor is reused when its
  code, spec, settings and rows are unchanged, so only what changed is trained. Sensors request it for
  exactly the affected assets (``Topology.built_on``).
"""

from __future__ import annotations

import dagster as dg

from featrix_pipeline.topology import Topology

REFRESH, RETRAIN = "refresh_and_score", "retrain"
# one run of this project at a time (both kinds write predictions and artifacts): the instance's
# dagster.yaml limits runs with this tag to one (scripts/bootstrap.sh writes it); others queue
QUEUE_TAG = {"featrix/queue": "pipeline"}
REFRESH_STAGES = ("raw", "profile", "filtered", "drift", "row_embeddings")


def refresh_keys(topology: Topology) -> list[dg.AssetKey]:
    """Every asset a refresh materializes: the data-quality half, drift, row embeddings, predictions."""
    keys = [dg.AssetKey(list(plan.key(stage))) for plan in topology.tables.values() for stage in REFRESH_STAGES
            if stage in ("raw", "profile", "filtered") or plan.has_space]
    keys += [dg.AssetKey(list(topology.join_key(r))) for r in topology.spec.relationships]
    keys += [dg.AssetKey(list(t.key("predictions"))) for t in topology.targets]
    return keys


def build_jobs(topology: Topology) -> dict[str, dg.UnresolvedAssetJobDefinition]:
    return {
        REFRESH: dg.define_asset_job(
            REFRESH, selection=dg.AssetSelection.assets(*refresh_keys(topology)), tags=QUEUE_TAG,
            description="Read the warehouse, profile, check the joins, measure drift, score new or changed rows and "
                        "write them back. Never trains."),
        RETRAIN: dg.define_asset_job(
            RETRAIN, selection=dg.AssetSelection.all(), tags=QUEUE_TAG,
            description="Everything, with content-addressed reuse: only spaces and predictors whose code, spec, "
                        "settings or rows changed are trained. Sensors run it for exactly the affected assets."),
    }
