"""What the UI shows of a run, read from the run's own events: figures as images (not file paths),
numbers it can plot over runs, training progress in the run log while a step trains, and lineage
nodes that say which tables they belong to."""

from __future__ import annotations

import base64
import io

import dagster as dg
from PIL import Image

from assets.definitions import build_assets, build_resources
from featrix_pipeline.spec import load_spec
from featrix_pipeline.topology import Topology
from tests.conftest import DEMO_SPEC


def _metadata(result, key: str) -> dict:
    return [m for m in result.get_asset_materialization_events()
            if m.asset_key.to_user_string() == key][0].materialization.metadata


def test_figures_are_images_in_the_metadata(trained_slice):
    for key, figure in (("flights/embedding_space", "figure_timeline"),
                        ("planes/relational_space", "figure_mutual_information"),
                        ("arr_delay15/predictor", "figure_calibration"),
                        ("plane_manufacturer/predictor", "figure_confusion_matrix")):
        meta = _metadata(trained_slice.result, key)
        shown = meta[figure]
        assert isinstance(shown, dg.MarkdownMetadataValue), (key, figure, type(shown))
        uri = shown.value.split("](data:image/png;base64,", 1)[1].rstrip(")")
        image = Image.open(io.BytesIO(base64.b64decode(uri)))
        assert image.format == "PNG" and 200 < image.width <= 900 and image.height > 200
        assert len(image.getcolors(1 << 16) or []) > 8  # a drawing, not a blank square
        assert isinstance(meta[f"{figure}_file"], dg.PathMetadataValue)
    assert isinstance(_metadata(trained_slice.result, "flights/embedding_space")["figure_sphere"], dg.PathMetadataValue)


def test_model_numbers_are_top_level_numbers(trained_slice):
    space = _metadata(trained_slice.result, "flights/embedding_space")
    for name in ("final_train_loss", "final_validation_loss", "fit_seconds", "split_kl_max"):
        assert isinstance(space[name], dg.FloatMetadataValue), name
    assert isinstance(space["epochs_run"], dg.IntMetadataValue) and isinstance(space["d_model"], dg.IntMetadataValue)
    predictor = _metadata(trained_slice.result, "arr_delay15/predictor")
    for name in ("held_out_roc_auc", "lightgbm_roc_auc", "baseline_roc_auc", "held_out_accuracy"):
        assert isinstance(predictor[name], dg.FloatMetadataValue), name
    assert 0.5 < predictor["held_out_roc_auc"].value < 1


def test_training_progress_is_in_the_run_log_while_the_step_runs(trained_slice):
    entries = trained_slice.instance.all_logs(trained_slice.result.run_id)
    lines = [(i, e.user_message) for i, e in enumerate(entries)
             if e.step_key == "flights__embedding_space" and "[flights] embedding space epoch " in e.user_message]
    assert lines, "no epoch line of flights/embedding_space in the run log"
    output = min(i for i, e in enumerate(entries) if e.step_key == "flights__embedding_space" and e.is_dagster_event
                 and e.dagster_event.is_successful_output)
    assert lines[0][0] < output, "epoch lines come while the step trains, before its output"
    assert "train loss" in lines[0][1] and "validation loss" in lines[0][1]
    assert any("[arr_delay15] predictor epoch " in e.user_message for e in entries)


def test_lineage_nodes_say_which_tables_they_belong_to(trained_slice):
    """The UI titles each group's box with the group's name, and its default node facets show no
    description: a node's group is what says which table, relationship or target it belongs to."""
    topology = Topology.from_spec(load_spec(trained_slice.spec_path))
    defs = dg.Definitions(assets=build_assets(topology), resources=build_resources(topology.spec))
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    for rel in topology.spec.relationships:
        join = specs[f"{rel.name}/join_report"]
        assert join.group_name == rel.name, join.group_name  # the box is titled flights_weather, ...
        assert join.description.startswith(f"{rel.child} → {rel.parent} on ")
    for plan in topology.targets:
        for stage in ("predictor", "predictions"):
            assert specs[f"{plan.name}/{stage}"].group_name == plan.name
            assert specs[f"{plan.name}/{stage}"].description.startswith(f"{plan.name} on {plan.table.name}: ")
    for key, spec in specs.items():  # every other node sits in its table's group
        if key.split("/")[-1] in ("raw", "profile", "filtered", "embedding_space", "row_embeddings", "drift"):
            assert spec.group_name == key.split("/")[0], key
    groups: dict[str, list[str]] = {}
    for key, spec in specs.items():
        groups.setdefault(spec.group_name, []).append(key.split("/")[-1])
    repeated = {g: names for g, names in groups.items() if len(names) != len(set(names))}
    assert not repeated, f"two boxes with one label in one group: {repeated}"


def test_a_group_name_already_taken_gets_a_suffix(tmp_path):
    text = DEMO_SPEC.read_text().replace("- name: flights_weather\n", "- name: planes\n", 1)  # a table's name
    text = text.replace("- name: arr_delay15\n", "- name: planes_join\n", 1)  # ... and what the suffix makes
    (tmp_path / "spec.yaml").write_text(text)
    topology = Topology.from_spec(load_spec(tmp_path / "spec.yaml"))
    groups = [topology.group(r) for r in topology.spec.relationships] + [topology.group(t) for t in topology.targets]
    assert "planes_join" in groups and "planes_join_predictor" in groups
    assert len(set(groups)) == len(groups) and not set(groups) & set(topology.tables)
