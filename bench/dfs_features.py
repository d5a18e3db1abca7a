"""Featuretools Deep Feature Synthesis for bench/multi_table.py, run in bench/.venv-dfs (featuretools 1.31: pandas < 3).

    bench/.venv-dfs/bin/python bench/dfs_features.py PARENTS.parquet CHILDREN.parquet OUT.parquet

PARENTS: `pid` (surrogate parent id) + parent feature columns, no target. CHILDREN: `pid` (the parent's id) +
child columns. Builds the EntitySet parents(pid) 1—n children(cid), runs dfs(target_dataframe_name="parents",
max_depth=2) with the default primitives and writes the feature matrix (one row per pid, column `pid` first).
The target never reaches this script, so no feature can be derived from it.
"""

import sys
import warnings

import featuretools as ft
import pandas as pd


def main(parents_path, children_path, out_path):
    warnings.simplefilter("ignore", (UserWarning, FutureWarning))  # woodwork type inference, pandas groupby notices
    parents = pd.read_parquet(parents_path)
    children = pd.read_parquet(children_path)
    es = ft.EntitySet("bench")
    es.add_dataframe(dataframe_name="parents", dataframe=parents, index="pid")
    es.add_dataframe(dataframe_name="children", dataframe=children, index="cid", make_index=True)
    es.add_relationship("parents", "pid", "children", "pid")
    fm, _ = ft.dfs(entityset=es, target_dataframe_name="parents", max_depth=2)
    fm.reset_index().to_parquet(out_path)


if __name__ == "__main__":
    main(*sys.argv[1:])
