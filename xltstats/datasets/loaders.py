"""``load_dataset``: a registered published dataset, or a user's own results file, as a results table."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..registry import Registry
from .registry import list_datasets


def _xpos(mirror, variant):
    from .xpos import load_xpos

    return load_xpos(mirror, variant=variant)


def _langrank(task):
    def load(mirror, variant):
        _no_variant(f"langrank-{task}", variant)
        from .langrank import load_langrank

        return load_langrank(task, mirror)

    return load


def _proxylm(mirror, variant):
    _no_variant("proxylm-intent", variant)
    from .proxylm import load_proxylm_intent

    return load_proxylm_intent(mirror)


def _sumeval(mirror, variant):
    from .sumeval import load_sumeval

    return load_sumeval(mirror, variant=variant)


def _no_variant(name, variant):
    if variant not in (None, "main", "default"):
        raise ConfigError(f"dataset {name!r} has no variant {variant!r} (it has a single table)")


#: Registry name -> loader(mirror, variant); the names are those of ``datasets.yaml``.
DATASETS: Registry = Registry("dataset")
for _name, _loader in [("xpos", _xpos), ("langrank-pos", _langrank("pos")), ("langrank-dep", _langrank("dep")),
                       ("langrank-el", _langrank("el")), ("langrank-mt", _langrank("mt")),
                       ("proxylm-intent", _proxylm), ("sumeval", _sumeval)]:
    DATASETS.register(_name, _loader)

#: The variants each loader accepts besides the default (for help texts and error messages).
VARIANTS = {
    "xpos": ["main", "all", "00630", "01250", "02500", "05000", "10000", "20000", "40000", "1epoch", "3epoch"],
    "sumeval": ["train", "test_release", "all"],
}


def load_dataset(name_or_path: str | os.PathLike = "xpos", *, mirror: str | os.PathLike | None = None,
                 variant: str | None = None) -> pd.DataFrame:
    """A validated results table.

    ``name_or_path`` is a registry name (see :func:`list_datasets`; the default ``xpos``) or the path
    of a results file (``.csv``, ``.tsv``, ``.jsonl``, ``.parquet``), which is read with
    :func:`xltstats.results.read_results`.  ``mirror`` is a local copy of the published data
    (default ``$XLTSTATS_MIRROR``; without one, files are downloaded once into the cache and
    verified).  ``variant`` selects another table of a dataset: for ``xpos`` ``"all"`` (every
    training length) or one length such as ``"1epoch"``; for ``sumeval`` ``"test_release"`` or
    ``"all"``.
    """
    name = os.fspath(name_or_path)
    if name in DATASETS:
        return DATASETS.get(name)(mirror, variant)
    if name in list_datasets():  # registered without a loader: a programming error
        raise ConfigError(f"dataset {name!r} is registered but has no loader")
    path = Path(name).expanduser()
    if path.is_file():
        if variant not in (None, "main", "default"):
            raise ConfigError(f"variant {variant!r} applies to registry datasets, not to the file {path}")
        from ..results import read_results

        return read_results(path)
    raise ConfigError(f"{DATASETS.unknown_message(name)}; and {name!r} is not an existing results file either")
