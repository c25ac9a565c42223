"""Reader for the result lines of ``ffaisal93/neg_inf`` (Faisal & Anastasopoulos).

Its scripts append one line per evaluated language, without a header::

    prefix,task,lang,m1,m2

``m1,m2`` are ``uas,las`` (UD parsing), ``f1,accuracy`` (POS, NER), ``accuracy,accuracy`` (XNLI,
AmericasNLI).  ``prefix`` says which model was evaluated:

* ``<L>_<k>_<run>``: k steps of continued MLM on transfer language L, run ``run`` (method A);
* ``mbert-<L>_<k>_<run>``: the baseline (original model + task adapter) written beside those runs
  (the ``mbert-`` label is used for XLM-R too);
* ``<L1>[_<L2>[_<L3>]]``: language adapters composed with the task adapter (method B): one adapter
  stacked, or an untrained AdapterFusion of two or three.

A language whose evaluation failed is written as ``0,0`` by a bare ``except:``: such a line is
**missing**, never a score of zero; it is kept in :attr:`NegInfRuns.failed` with its line number.
Codes the scripts use that are not ISO 639-3 are mapped explicitly (:data:`CODE_MAP`: ``jap`` is
Jaruára in ISO 639-3 but Japanese here, ``fre`` -> ``fra``, ``gn`` -> ``grn``); treebank-style
codes (``en_ewt``) keep the treebank in ``target_treebank``.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ...languages import LanguageCodeError, to_iso639_3
from ...results import MULTI_SOURCE, format_condition, parse_condition, validate_results

CODE_MAP = {"jap": "jpn", "fre": "fra", "gn": "grn", "ger": "deu", "chi": "zho", "dut": "nld",
            "per": "fas", "cze": "ces", "gre": "ell", "rum": "ron", "slo": "slk", "arm": "hye",
            "geo": "kat", "baq": "eus", "wel": "cym", "ice": "isl", "mac": "mkd", "may": "msa",
            "bur": "mya", "alb": "sqi", "tib": "bod"}
#: neg_inf task name -> (metric of m1, metric of m2, the one used as ``score``)
TASK_METRICS = {
    "udp": ("uas", "las", "las"), "ud": ("uas", "las", "las"), "dep": ("uas", "las", "las"),
    "pos": ("f1", "accuracy", "accuracy"), "upos": ("f1", "accuracy", "accuracy"),
    "ner": ("f1", "accuracy", "f1"), "ner_m2": ("f1", "accuracy", "f1"),
    "xnli": ("accuracy", "accuracy", "accuracy"), "anli": ("accuracy", "accuracy", "accuracy"),
    "nli": ("accuracy", "accuracy", "accuracy"),
}
_METHOD_A = re.compile(r"^(?P<baseline>mbert-)?(?P<lang>[A-Za-z]+)_(?P<k>\d+)_(?P<run>\d+)$")
_METHOD_B = re.compile(r"^[A-Za-z]+(?:_[A-Za-z]+){0,2}$")


@dataclass
class NegInfRuns:
    """``results``: a validated results table (transfer rows, and baseline rows when the task
    adapter's training languages are given); ``baselines``: one row per (task, target, k);
    ``failed``: the ``0,0`` lines (missing evaluations) with file and line."""

    results: pd.DataFrame
    baselines: pd.DataFrame
    failed: pd.DataFrame


def language(code: str, *, file, row, column) -> tuple[str, str | None]:
    """ISO 639-3 code of a neg_inf language field, and the treebank when it names one."""
    text = code.strip()
    treebank = None
    if "_" in text and text.split("_", 1)[0].isalpha():
        text, treebank = text.split("_", 1)[0], text
    lowered = text.lower()
    if lowered in CODE_MAP:
        return CODE_MAP[lowered], treebank
    try:
        return to_iso639_3(lowered), treebank
    except LanguageCodeError as error:
        raise InputError(f"{error} (neg_inf codes mapped explicitly: "
                         f"{', '.join(f'{k}->{v}' for k, v in sorted(CODE_MAP.items())[:3])}, ...)",
                         file=file, row=row, column=column) from None


def read_neg_inf(paths, *, model: str, task_languages: dict | None = None,
                 score: str = "primary") -> NegInfRuns:
    """Read neg_inf result files into the results schema (see the module docstring).

    ``model``: the model name for the ``model`` column (the lines do not say). ``task_languages``:
    the task adapter's training languages with their example counts (``{"eng": 12543, ...}``);
    when given, the baselines also become rows of ``results`` (``source = "mul"``,
    ``condition = method=baseline;mlm_steps=k``). ``score``: ``primary`` (LAS, accuracy for POS,
    F1 for NER, accuracy for NLI), ``m1`` or ``m2``.
    """
    if score not in ("primary", "m1", "m2"):
        raise InputError(f"score must be primary, m1 or m2, got {score!r}")
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    records, failed = [], []
    for path in paths:
        records_f, failed_f = _read_file(Path(path), score)
        records += records_f
        failed += failed_f
    if not records and not failed:
        raise InputError("no result lines", file=paths[0] if paths else None)
    frame = pd.DataFrame(records)
    failed_frame = pd.DataFrame(failed, columns=["file", "line", "prefix", "task", "lang", "reason"])
    if frame.empty:
        raise InputError("every line is a failed evaluation (0,0)", file=paths[0])
    frame["model"] = model
    base = frame[frame["kind"] == "baseline"]
    baselines = _baselines(base)
    transfer = frame[frame["kind"] != "baseline"].copy()
    lookup = {(r.task, r.target, r.target_treebank, r.mlm_steps): r.score
              for r in baselines.itertuples()}
    any_k = baselines.groupby(["task", "target", "target_treebank"])["score"].first().to_dict() \
        if len(baselines) else {}

    def baseline_of(row):
        treebank = row["target_treebank"] if isinstance(row["target_treebank"], str) else ""
        fallback = any_k.get((row["task"], row["target"], treebank))
        if row["method"] == "mlm":
            return lookup.get((row["task"], row["target"], treebank, row["mlm_steps"]), fallback)
        return fallback

    transfer["baseline_score"] = transfer.apply(baseline_of, axis=1) if len(transfer) else []
    transfer["influence"] = transfer["score"] - transfer["baseline_score"]
    rows = [transfer]
    if task_languages and len(baselines):
        counts = {to_iso639_3(k): int(v) for k, v in task_languages.items()}
        b = baselines.copy()
        b["source"] = MULTI_SOURCE
        b["source_languages"] = json.dumps(dict(sorted(counts.items())))
        b["n_source_examples"] = sum(counts.values())
        b["method"] = "baseline"
        b["condition"] = [format_condition({"method": "baseline", "mlm_steps": int(k),
                                            **({"treebank": t} if t else {})})
                          for k, t in zip(b["mlm_steps"], b["target_treebank"])]
        b["target_treebank"] = b["target_treebank"].replace("", None)
        b["seed"] = 1
        b["model"] = model
        rows.append(b)
    table = pd.concat(rows, ignore_index=True)
    columns = ["model", "task", "source", "target", "score", "metric", "n_source_examples",
               "n_target_examples", "seed", "condition", "method", "mlm_steps", "compose",
               "n_languages", "baseline_score", "influence", "score_m1", "score_m2", "metric_m1",
               "metric_m2", "prefix", "target_treebank", "file", "line"]
    if "source_languages" in table.columns:
        columns.insert(9, "source_languages")
    table = table.reindex(columns=columns)
    table["n_target_examples"] = 0
    results = validate_results(table, file=paths[0] if len(paths) == 1 else None)
    return NegInfRuns(results, baselines.reset_index(drop=True), failed_frame)


def _read_file(path: Path, score: str):
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text ({error.reason} at byte {error.start})", file=path) from None
    records, failed = [], []
    for number, fields in enumerate(csv.reader(text.splitlines()), start=1):
        if not fields or not "".join(fields).strip():
            continue
        if len(fields) != 5:
            raise InputError(f"expected 5 fields prefix,task,lang,m1,m2, got {len(fields)}",
                             file=path, row=number)
        prefix, task, lang, m1, m2 = (f.strip() for f in fields)
        task_key = task.lower()
        if task_key not in TASK_METRICS:
            raise InputError(f"unknown neg_inf task {task!r}; known: {', '.join(sorted(TASK_METRICS))}",
                             file=path, row=number, column="task")
        values = []
        for column, value in (("m1", m1), ("m2", m2)):
            try:
                number_value = float(value)
            except ValueError:
                raise InputError(f"not a number: {value!r}", file=path, row=number, column=column) from None
            if not np.isfinite(number_value):
                raise InputError(f"not a finite number: {value!r}", file=path, row=number, column=column)
            values.append(number_value)
        target, treebank = language(lang, file=path, row=number, column="lang")
        if values == [0.0, 0.0]:
            failed.append({"file": str(path), "line": number, "prefix": prefix, "task": task_key,
                           "lang": lang, "reason": "0,0: the evaluation failed (bare except in neg_inf)"})
            continue
        metric_1, metric_2, primary = TASK_METRICS[task_key]
        if score == "m1" or (score == "primary" and primary == metric_1 and metric_1 != metric_2):
            value, metric = values[0], metric_1
        else:
            value, metric = values[1], metric_2
        record = {"task": task_key, "target": target, "target_treebank": treebank, "score": value,
                  "metric": metric, "score_m1": values[0], "score_m2": values[1],
                  "metric_m1": metric_1, "metric_m2": metric_2, "prefix": prefix,
                  "file": str(path), "line": number}
        record.update(_prefix(prefix, path, number))
        if treebank and "condition" in record:  # two treebanks of one language are two targets
            record["condition"] = format_condition({**parse_condition(record["condition"]),
                                                    "treebank": treebank})
        records.append(record)
    return records, failed


def _prefix(prefix: str, path, number) -> dict:
    match = _METHOD_A.match(prefix)
    if match:
        lang, _ = language(match.group("lang"), file=path, row=number, column="prefix")
        k, run = int(match.group("k")), int(match.group("run"))
        if match.group("baseline"):
            return {"kind": "baseline", "mlm_steps": k, "run": run, "baseline_language": lang}
        return {"kind": "transfer", "method": "mlm", "source": lang, "mlm_steps": k, "seed": run,
                "condition": format_condition({"method": "mlm", "mlm_steps": k}),
                "n_source_examples": 8 * k}  # batch size 8 in neg_inf's run_mlm_no_trainer calls
    if _METHOD_B.match(prefix):
        members = [language(p, file=path, row=number, column="prefix")[0] for p in prefix.split("_")]
        compose = "stack" if len(members) == 1 else "fuse"
        record = {"kind": "transfer", "method": "adapter", "compose": compose,
                  "n_languages": len(members), "seed": 1,
                  "condition": format_condition({"method": "adapter", "compose": compose})}
        if len(members) == 1:
            record["source"] = members[0]
        else:
            record["source"] = MULTI_SOURCE
            record["source_languages"] = json.dumps({m: 0 for m in sorted(members)})
        return record
    raise InputError(f"prefix {prefix!r} is neither <lang>_<k>_<run>, mbert-<lang>_<k>_<run> nor "
                     "<lang>[_<lang>[_<lang>]]", file=path, row=number, column="prefix")


def _baselines(base: pd.DataFrame) -> pd.DataFrame:
    """One baseline per (task, target, k); repeated lines must agree (their spread is kept)."""
    if base.empty:
        return pd.DataFrame(columns=["task", "target", "target_treebank", "mlm_steps", "score",
                                     "metric", "n_lines", "spread"])
    base = base.assign(target_treebank=base["target_treebank"].fillna(""))
    grouped = base.groupby(["task", "target", "target_treebank", "mlm_steps"], sort=True)
    out = grouped.agg(score=("score", "mean"), metric=("metric", "first"), n_lines=("score", "size"),
                      spread=("score", lambda s: float(s.max() - s.min())))
    return out.reset_index()
