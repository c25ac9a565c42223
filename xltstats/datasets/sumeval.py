"""Loader for the SumEval 2022 shared-task data (LITMUS project, Ahuja et al. 2022).

Each JSON file (``SumEval/data/{train,test_release}/<Task>_<Model>[...].json``) is a list of
records ``{"train_config": {lang: n_examples, ...}, "eval_results": {lang: score, ...}}``: one
model fine-tuned on the configuration's amounts of data per pivot language, evaluated on every
listed target language.  One output row per (record, target language).

* ``source``: the one pivot language with examples for single-source configurations, else
  ``"mul"``; ``source_languages``: JSON object ISO 639-3 -> examples of every pivot with examples
  (sorted keys; also for single-source rows, where it is part of the row key that tells apart runs
  with different amounts of data); ``n_source_examples``: the configuration's total.
* ``n_target_examples``: the examples in the target language itself that the configuration
  includes (0 when none), so few-shot rows can be told from zero-shot ones.
* ``task``: ``xnli``, ``wikiann``, ``udpos``, ``tydiqa`` (TyDiQA-GoldP fine-tuning evaluated on
  TyDiQA, the ``_ID`` files) or ``tydiqa-xquad`` (the same models evaluated on XQuAD, ``_OOD``).
  ``metric``: accuracy for XNLI, F1 otherwise (fractions, as shipped).
* ``model``: ``xlm-roberta-large`` (``XLMR``) or ``t-ulrv6-large`` (``TULRv6Large``).
* ``split`` (``train`` / ``test_release``), ``file`` (path in the upstream repository),
  ``config_set`` (``main``, ``surprise_langs_diff_configs``, ``surprise_langs_same_configs``)
  and ``config_id`` (``<file stem>#<record index>``: one trained model) say where a row came from.
* ``seed`` is 0 (one run per configuration).

The ``test_release`` files withhold their scores (every value is ``"x"``).  ``load_sumeval()``
therefore returns the ``train`` split; ``variant="test_release"`` or ``"all"`` adds the withheld
configurations with a missing score, for prediction (everything but the score is validated).
"""
from __future__ import annotations

import json
import re
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ._common import finish
from .registry import dataset_info, get_dataset_file

NAME = "sumeval"
_FILE = re.compile(r"^(?P<task>XNLI|WikiANN|UDPOS|TyDiQA)_(?P<model>XLMR|TULRv6Large)"
                   r"(?:_(?P<dist>ID|OOD))?(?:_(?P<set>surprise_langs_(?:diff|same)_configs))?\.json$")
_MODELS = {"XLMR": "xlm-roberta-large", "TULRv6Large": "t-ulrv6-large"}
_TASKS = {"XNLI": ("xnli", "accuracy"), "WikiANN": ("wikiann", "f1"), "UDPOS": ("udpos", "f1"),
          "TyDiQA": ("tydiqa", "f1")}
SPLITS = ("train", "test_release")


def _files(splits) -> list[str]:
    files = dataset_info(NAME)["files"]
    return [p for p in files if p.endswith(".json") and PurePosixPath(p).parent.name in splits]


def _describe(repo_path: str) -> dict:
    name = PurePosixPath(repo_path).name
    m = _FILE.match(name)
    if not m:
        raise InputError("file name does not follow <Task>_<Model>[_ID|_OOD][_surprise_langs_*].json",
                         file=repo_path)
    task, metric = _TASKS[m["task"]]
    if m["dist"] == "OOD":
        task = "tydiqa-xquad"
    return {"task": task, "metric": metric, "model": _MODELS[m["model"]],
            "config_set": m["set"] or "main", "stem": name[:-5]}


def _parse(repo_path: str, path, split: str, to_iso) -> list[dict]:
    meta = _describe(repo_path)
    with open(path, encoding="utf-8") as fh:
        records = json.load(fh)
    rows = []
    for i, record in enumerate(records):
        try:
            config = {lang: int(n) for lang, n in record["train_config"].items()}
            results = record["eval_results"]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"record {i} is not {{'train_config': {{lang: n}}, 'eval_results': {{...}}}}: {exc}",
                             file=path, row=i + 1) from None
        used = {lang: n for lang, n in config.items() if n > 0}
        if not used:
            raise InputError(f"record {i} has no training examples in any language", file=path, row=i + 1)
        total = sum(used.values())
        iso = {}
        for lang, n in used.items():
            code = to_iso(lang)
            iso[code] = iso.get(code, 0) + n
        source = next(iter(used)) if len(used) == 1 else "mul"
        source_languages = json.dumps(dict(sorted(iso.items())))
        for target, value in results.items():
            if isinstance(value, str) and value.strip().lower() == "x":
                score = np.nan  # withheld by the shared task
            else:
                score = float(value)
            rows.append({
                "model": meta["model"], "task": meta["task"], "source": source, "target": target,
                "score": score, "metric": meta["metric"], "n_source_examples": total,
                "n_target_examples": used.get(target, 0), "seed": 0,
                "source_languages": source_languages, "split": split, "file": repo_path,
                "config_set": meta["config_set"], "config_id": f"{meta['stem']}#{i}",
            })
    return rows


def load_sumeval(mirror=None, variant: str = "train") -> pd.DataFrame:
    """The SumEval table; ``variant``: ``train`` (default, scored), ``test_release`` or ``all``."""
    if variant in (None, "main", "default", "train"):
        splits = ("train",)
    elif variant == "test_release":
        splits = ("test_release",)
    elif variant == "all":
        splits = SPLITS
    else:
        raise ConfigError(f"unknown sumeval variant {variant!r}: use 'train', 'test_release' or 'all'")
    from ..languages import to_iso639_3

    rows, first = [], None
    for repo_path in _files(splits):
        path = get_dataset_file(NAME, repo_path, mirror)
        first = first or path
        rows += _parse(repo_path, path, PurePosixPath(repo_path).parent.name, to_iso639_3)
    df = pd.DataFrame(rows)
    df["n_source_examples"] = df["n_source_examples"].astype("Int64")
    df["source_languages"] = df["source_languages"].astype(object)
    where = PurePosixPath(str(first)).parent.parent / "*" / "*.json"
    withheld = df["score"].isna()
    if not withheld.any():
        return finish(df, str(where))
    # Withheld test scores: validate everything else with a placeholder, then put the gap back.
    out = finish(df.assign(score=df["score"].fillna(0.0)), str(where))
    out.loc[withheld.to_numpy(), "score"] = float("nan")
    return out
