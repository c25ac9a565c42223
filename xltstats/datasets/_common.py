"""Helpers shared by the dataset loaders."""
from __future__ import annotations

import os

import pandas as pd

from .registry import get_dataset_file

#: The required columns of a results table, in contract order.
REQUIRED = ["model", "task", "source", "target", "score", "metric",
            "n_source_examples", "n_target_examples", "seed"]


def read_csv(name: str, repo_path: str, mirror, **kwargs) -> tuple[pd.DataFrame, str]:
    """Read a registered CSV file; returns the table and the local path it was read from."""
    path = get_dataset_file(name, repo_path, mirror)
    return pd.read_csv(path, **kwargs), str(path)


def finish(df: pd.DataFrame, file: str | os.PathLike) -> pd.DataFrame:
    """Order the columns (contract columns first), then validate the table.

    Validation normalises ``source``/``target`` to ISO 639-3 (keeping the dataset's own codes in
    ``source_code``/``target_code``) and the column types.
    """
    from ..results import validate_results

    extra = [c for c in df.columns if c not in REQUIRED]
    df = df[REQUIRED + extra].reset_index(drop=True)
    return validate_results(df, file=str(file))
