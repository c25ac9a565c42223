"""Reader for the ``*_results.json`` files of ``mklimasz/language-arithmetic`` (Klimaszewski et al.).

Its ``run_ner.py`` / ``run_nli.py`` / ``run_qa.py`` save Hugging Face metrics with
``trainer.save_metrics(prefix)``: ``<output_dir>/<prefix>_results.json``, a JSON object such as
``{"eval_f1": 0.61, "eval_precision": ..., "eval_w1": 0.9, "eval_w2": 0.1, "eval_loss": ...}``,
where ``prefix`` is ``test_zeroshot_interpolation_<task>_<w1>_<w2>`` or the
``--metric_file_prefix`` (``test_lang_<eval_lang>``).  The files do not name the target language,
the two adapters or the seed: they come from the folder layout, given as a regular expression
with named groups (``target``, ``a1``, ``a2``, ``seed``, ``task``, ``model``) matched against the
path, or as arguments.  Scores: ``f1`` (seqeval, 0-1), ``accuracy`` (0-1), SQuAD ``f1`` / ``exact_match``
(0-100) -- the scale is kept, :func:`xltstats.results.validate_results` checks it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ...errors import InputError
from ...languages import LanguageCodeError, to_iso639_3
from ...results import format_condition, validate_results

_PREFIX = re.compile(r"^(?P<split>test|eval|validation|predict)_zeroshot_interpolation_(?P<task>[A-Za-z0-9]+)"
                     r"_(?P<w1>-?[0-9.]+)_(?P<w2>-?[0-9.]+)$")
_LANG_PREFIX = re.compile(r"^(?P<split>test|eval|validation|predict)_lang_(?P<lang>[A-Za-z_-]+)$")
METRIC_KEYS = (("f1", "f1"), ("accuracy", "accuracy"), ("exact_match", "em"))


def _iso(code, file, column):
    try:
        return to_iso639_3(str(code))
    except LanguageCodeError as error:
        raise InputError(str(error), file=file, column=column) from None


def read_la_results(paths, *, model: str | None = None, task: str | None = None,
                    target: str | None = None, adapters: tuple[str, str] | None = None,
                    seed: int | None = None, source: str = "eng", path_pattern: str | None = None,
                    metric: str | None = None) -> pd.DataFrame:
    """Read ``*_results.json`` files into the results schema (one row per file).

    Rows: ``condition = la=<a1>:<w1>+<a2>:<w2>;split=<test|validation>``, ``lambda = w1``,
    ``adapter_a``, ``adapter_b``, ``split``, ``file``. Values from ``path_pattern``'s named groups
    take precedence over the arguments; a field neither gives is an error naming the file.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise InputError("no *_results.json files given")
    pattern = re.compile(path_pattern) if path_pattern else None
    rows = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise InputError("file not found", file=path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"not valid JSON ({error})", file=path) from None
        if not isinstance(data, dict):
            raise InputError("expected a JSON object of metrics", file=path)
        fields = {"model": model, "task": task, "target": target, "seed": seed,
                  "a1": adapters[0] if adapters else None, "a2": adapters[1] if adapters else None}
        if pattern:
            match = pattern.search(path.as_posix())
            if not match:
                raise InputError(f"path does not match --path-pattern {path_pattern!r}", file=path)
            fields.update({k: v for k, v in match.groupdict().items() if v is not None})
        name = path.name.removesuffix("_results.json")
        prefix_match = _PREFIX.match(name)
        lang_match = _LANG_PREFIX.match(name)
        split = "test"
        if prefix_match:
            split = prefix_match.group("split")
            fields["task"] = fields["task"] or prefix_match.group("task")
        elif lang_match:
            split = lang_match.group("split")
            fields["target"] = fields["target"] or lang_match.group("lang")
        split = "test" if split in ("test", "predict") else "validation"
        key_prefix = next((k.rsplit("_", 1)[0] for k in data if k.endswith("_w1")), None)
        w1, w2 = None, None
        if key_prefix:
            w1, w2 = data.get(f"{key_prefix}_w1"), data.get(f"{key_prefix}_w2")
        if w1 is None and prefix_match:
            w1, w2 = float(prefix_match.group("w1")), float(prefix_match.group("w2"))
        if w1 is None or w2 is None:
            raise InputError("no merge weights: neither *_w1/*_w2 keys nor a "
                             "..._interpolation_<task>_<w1>_<w2> file name", file=path, column="w1")
        value, metric_name = _score(data, metric, path)
        for needed in ("model", "task", "target", "seed", "a1", "a2"):
            if fields[needed] in (None, ""):
                raise InputError(f"no {needed}: give it as an argument or a named group of the path "
                                 "pattern", file=path, column=needed)
        a1, a2 = _iso(fields["a1"], path, "a1"), _iso(fields["a2"], path, "a2")
        la = f"{a1}:{float(w1):.6g}+{a2}:{float(w2):.6g}"
        rows.append({
            "model": fields["model"], "task": fields["task"], "source": _iso(source, path, "source"),
            "target": _iso(fields["target"], path, "target"), "score": value, "metric": metric_name,
            "n_source_examples": None, "n_target_examples": 0, "seed": int(fields["seed"]),
            "condition": format_condition({"la": la, "split": split}), "lambda": float(w1),
            "weight_b": float(w2), "adapter_a": a1, "adapter_b": a2, "split": split,
            "method": "arithmetic", "la_method": "linear", "file": str(path)})
    frame = pd.DataFrame(rows)
    return validate_results(frame, file=paths[0] if len(paths) == 1 else None)


def _score(data: dict, metric: str | None, path) -> tuple[float, str]:
    for key, name in METRIC_KEYS:
        if metric not in (None, key, name):
            continue
        for k, v in data.items():
            if k.endswith(f"_{key}") and not k.endswith(f"_macro_{key}"):
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise InputError(f"{k} is not a number: {v!r}", file=path, column=k)
                return float(v), name
    raise InputError(f"no {metric or 'f1, accuracy or exact_match'} metric among "
                     f"{', '.join(sorted(data))}", file=path)
