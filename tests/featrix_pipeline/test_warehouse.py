from __future__ import annotations

import pandas as pd
import pytest

from featrix_pipeline.spec import load_spec
from featrix_pipeline.targets import target_values
from featrix_pipeline.warehouse import Warehouse, WarehouseError


def test_duckdb_snapshot_is_ordered_and_typed(small_warehouse):
    spec = load_spec(small_warehouse)
    wh = Warehouse(spec.warehouse_url)
    w = wh.read_table("weather", order_by=["origin", "time_hour"])
    assert pd.api.types.is_datetime64_any_dtype(w["time_hour"])
    assert list(w[["origin", "time_hour"]].itertuples(index=False)) == sorted(w[["origin", "time_hour"]].itertuples(index=False))
    assert wh.read_table("planes", order_by=["tailnum"], limit=7).shape[0] == 7


def test_identifiers_are_quoted_not_interpolated(tmp_path):
    wh = Warehouse(f"duckdb:///{tmp_path / 'q.duckdb'}")
    wh.write_table("odd table", pd.DataFrame({"select": [1, 2], "from x": ["a", "b"]}))
    df = wh.read_table("odd table", order_by=["select"], columns=["from x", "select"])
    assert df.to_dict("list") == {"from x": ["a", "b"], "select": [1, 2]}


def test_folder_of_files_reads_csv_and_parquet(tmp_path, nyc_frames):
    folder = tmp_path / "files"
    folder.mkdir()
    nyc_frames["airlines"].to_csv(folder / "airlines.csv", index=False)
    nyc_frames["planes"].to_parquet(folder / "planes.parquet")
    wh = Warehouse(f"files:///{folder}")
    assert wh.read_table("airlines", order_by=["carrier"]).shape == (16, 2)
    assert wh.columns("planes") == list(nyc_frames["planes"].columns)
    with pytest.raises(WarehouseError, match="No file for table 'weather'"):
        wh.read_table("weather")


def test_missing_warehouse_says_how_to_seed(tmp_path):
    with pytest.raises(WarehouseError, match="featrix_pipeline.demo"):
        Warehouse(f"duckdb:///{tmp_path / 'nope.duckdb'}").read_table("flights")


def test_expression_target_keeps_every_row(nyc_frames):
    spec = load_spec()
    flights = nyc_frames["flights"]
    y = target_values(flights, next(t for t in spec.targets if t.name == "arr_delay15"))
    assert len(y) == len(flights)
    assert y.isna().sum() == flights["arr_delay"].isna().sum()
    assert (y.dropna() == (flights["arr_delay"].dropna() > 15)).all()
    mfr = target_values(nyc_frames["planes"], next(t for t in spec.targets if t.name == "plane_manufacturer"))
    assert set(mfr) <= {"BOEING", "AIRBUS", "EMBRAER", "BOMBARDIER", "MCDONNELL_DOUGLAS", "OTHER"}
    assert (mfr[nyc_frames["planes"]["manufacturer"] == "CANADAIR"] == "BOMBARDIER").all()


def test_write_waits_for_a_reader_in_another_process(tmp_path):
    import subprocess
    import sys
    import time

    db = tmp_path / "w.duckdb"
    wh = Warehouse(f"duckdb:///{db}")
    wh.write_table("t", pd.DataFrame({"a": [1]}))
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import duckdb, time; c = duckdb.connect({str(db)!r}, read_only=True); time.sleep(2)"])
    time.sleep(1.0)  # the other process now holds the file
    wh.write_table("scores", pd.DataFrame({"a": [1, 2]}))  # waits instead of failing
    holder.wait()
    assert wh.read_table("scores", order_by=["a"])["a"].tolist() == [1, 2]
