"""A generated corpus of malformed inputs for every command-line tool, and the harness that runs it.

Each :class:`Case` writes its files into a fresh folder, runs one CLI in-process through its
``main()`` (or, for a sample, as a subprocess) and is judged:

* ``clear``: exit status 2, no traceback, and the message names the file and a row, column or
  configuration key (``where``: regular expressions that must all match stderr);
* ``unclear``: exit 2 without the location; ``traceback``: any other exception or exit status, or
  "Traceback" on stderr; ``silent``: exit 0 on an input that must be refused;
* ``partial``: something was left behind (a hidden temporary, a partial output) or the previous
  output folder changed; ``code ran``: a marker file that an injected formula would create exists.

``python -m tests.adversarial.corpus [--all]`` prints the counts (inputs tried, clear errors,
tracebacks, silent acceptances) for the report.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import operator
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

LANGUAGES = ["eng", "deu", "fra", "spa", "rus", "hin", "fin", "tur"]
FORMATS = ("csv", "tsv", "jsonl", "parquet")
MARKER = "PWNED"
DELETE = object()  # an edit that removes the key


# ------------------------------------------------------------------------------------ inputs

def good_table(languages=LANGUAGES, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [dict(model="xlmr", task="pos", source=s, target=t,
                 score=round(float(rng.uniform(0.3, 0.95)), 4), metric="accuracy",
                 n_source_examples=1000, n_target_examples=0, seed=1)
            for s in languages for t in languages]
    return pd.DataFrame(rows)


def encode_table(frame: pd.DataFrame, fmt: str) -> bytes:
    if fmt in ("csv", "tsv"):
        return frame.to_csv(index=False, sep="," if fmt == "csv" else "\t",
                            lineterminator="\n").encode("utf-8")
    if fmt == "jsonl":
        return "".join(json.dumps(r, default=_json_default) + "\n"
                       for r in frame.to_dict(orient="records")).encode("utf-8")
    buffer = io.BytesIO()
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object and len({type(v) for v in values if not isinstance(v, (list, dict))}) > 1:
            frame[column] = values.map(lambda v: v if v is None else str(v))  # one Arrow type
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)


@dataclass
class Case:
    name: str
    cli: str                       # fit | predict | features | report | reproduce | experiments
    files: dict                    # relative path -> bytes
    argv: list                     # arguments; "{d}" is replaced by the case folder
    where: list = field(default_factory=list)   # regexes stderr must match
    area: str = "hostile"          # whose defect it is when it fails ("pipeline" or "hostile")
    slow: bool = False
    out: str | None = None         # output path the CLI would write (must not appear / must stay)
    setup: Callable | None = None  # extra preparation: setup(folder)


def _table_case(name, frame_or_bytes, fmt, where, **kw) -> Case:
    data = frame_or_bytes if isinstance(frame_or_bytes, bytes) else encode_table(frame_or_bytes, fmt)
    file = f"t.{fmt}"
    return Case(name=f"table/{fmt}/{name}", cli="fit", files={file: data, "c.yaml": b"report: false\n"},
                argv=["--data", "{d}/" + file, "--config", "{d}/c.yaml", "--out", "{d}/out", "--quiet"],
                where=[re.escape(file)] + where, out="out", **kw)


def table_cases() -> list[Case]:
    cases: list[Case] = []
    base = good_table()
    required = ["model", "task", "source", "target", "score", "metric", "n_source_examples",
                "n_target_examples", "seed"]
    for fmt in FORMATS:
        for column in required:
            cases.append(_table_case(f"missing-{column}", base.drop(columns=[column]), fmt,
                                     [rf"column '{column}'|{column}"]))
        bad_values = {
            "score-text": ("score", "abc", object),
            # an empty score ("score-nan") is no defect: the row is a prediction target (issue 13)
            "score-inf": ("score", float("inf"), float),
            "score-neg-inf": ("score", float("-inf"), float),
            "score-negative": ("score", -0.5, float),
            "score-huge": ("score", 1e300, float),
            "seed-text": ("seed", "one", object),
            "seed-fraction": ("seed", 1.5, float),
            "n-target-negative": ("n_target_examples", -3, int),
            "n-target-fraction": ("n_target_examples", 2.5, float),
            "n-target-2-53-plus-1": ("n_target_examples", 2**53 + 1, int),
            "n-source-text": ("n_source_examples", "many", object),
            "model-empty": ("model", "", object),
            "metric-unknown": ("metric", "bogus_metric", object),
            "source-unknown": ("source", "qqq", object),
            "target-unknown": ("target", "zz-Fake-99", object),
            "target-mul": ("target", "mul", object),
            "source-empty": ("source", "", object),
        }
        for label, (column, value, kind) in bad_values.items():
            if fmt in ("csv", "tsv") and label in ("score-neg-inf",):
                continue
            frame = base.copy()
            if kind is object:
                frame[column] = frame[column].astype(object)
            elif kind is float:
                frame[column] = frame[column].astype(float)
            frame.loc[41, column] = value
            if fmt == "jsonl" and label.startswith("score-") and isinstance(value, float) and not np.isfinite(value):
                continue  # JSON has no NaN/inf literals in strict writers; covered by csv/parquet
            cases.append(_table_case(label, frame, fmt, [r"row 42", rf"column '{column}'"]))
        # scale outliers in one (metric, task, model) group
        for label, value in (("accuracy-55-among-0-1", 55.0), ("accuracy-1.0000001", 1.0000001)):
            frame = base.copy()
            frame.loc[41, "score"] = value
            cases.append(_table_case(label, frame, fmt, [r"row 42", r"column 'score'"]))
        frame = base.copy()
        frame.loc[40, ["source", "target"]] = frame.loc[0, ["source", "target"]].to_numpy()
        cases.append(_table_case("duplicate-key", frame, fmt, [r"row 41", r"row 1\b"]))
        frame = base.head(1)
        cases.append(_table_case("one-row", frame, fmt, [r"1 row|one row|rows?"]))
        frame = good_table(["eng"])
        cases.append(_table_case("one-language", frame, fmt, [r"language|pair"]))
        frame = base.copy()
        frame["score"] = 0.5
        cases.append(_table_case("all-scores-equal", frame, fmt, [r"score"]))
        frame = base.copy()
        frame["source"] = "eng"
        frame["target"] = "deu"
        frame = frame.head(1)
        cases.append(_table_case("single-pair", frame, fmt, [r"rows?|pair"]))
    # delimited-only problems
    text = encode_table(base, "csv").decode()
    lines = text.split("\n")
    latin = "\n".join(lines[:42] + [lines[42].replace("xlmr", "xlmr-caf\xe9")] + lines[43:]).encode("latin-1")
    offset = latin.index(b"\xe9") + 1
    cases.append(_table_case("latin-1-byte", latin, "csv", [r"row 42", rf"byte {offset:,}|byte {offset}\b"]))
    cases.append(_table_case("utf-16", text.encode("utf-16"), "csv", [r"UTF-8|utf-8|encoding"]))
    header = lines[0]
    cases.append(_table_case("duplicate-header", ("\n".join([header + ",score"] + [l + ",0.1" for l in lines[1:] if l])
                                                  + "\n").encode(), "csv", [r"column 'score'"]))
    cases.append(_table_case("empty-file", b"", "csv", [r"empty"]))
    cases.append(_table_case("header-only", (header + "\n").encode(), "csv", [r"no data rows|empty"]))
    cases.append(_table_case("binary-garbage", bytes(range(256)) * 4, "csv", [r"UTF-8|parse|byte"]))
    cases.append(_table_case("nul-bytes", b"\x00" * 300, "csv", [r"NUL|parse|column|UTF"]))
    ragged = "\n".join(lines[:10] + [lines[10] + ",extra,fields"] + lines[11:]).encode()
    cases.append(_table_case("ragged-row", ragged, "csv", [r"row 10|row 9|line 11|row"]))
    quote = "\n".join(lines[:20] + ['"unclosed' + lines[20]] + lines[21:]).encode()
    cases.append(_table_case("unclosed-quote", quote, "csv", [r"row|line|parse"]))
    cases.append(_table_case("semicolon-separated", text.replace(",", ";").encode(), "csv",
                             [r"column|missing"]))
    cases.append(_table_case("tsv-given-csv", encode_table(base, "tsv"), "csv", [r"column|missing"]))
    cases.append(_table_case("wrong-extension", text.encode(), "xlsx", [r"extension|format"]))
    # jsonl-only problems
    jl = encode_table(base, "jsonl").decode().split("\n")
    for label, bad in (("array-line", "[1, 2, 3]"), ("number-line", "42"), ("broken-json", '{"model": "x",'),
                       ("nul-line", "\x00" * 20), ("string-line", '"hello"')):
        body = "\n".join(jl[:20] + [bad] + jl[20:]).encode()
        cases.append(_table_case(label, body, "jsonl", [r"row 21"]))
    # parquet-only problems
    frame = base.copy()
    frame["model"] = [["xlmr", "mbert"]] * len(frame)
    cases.append(_table_case("list-valued-model", frame, "parquet", [r"column 'model'"]))
    frame = base.copy()
    frame["seed"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame.index, unit="s")
    cases.append(_table_case("timestamp-seed", frame, "parquet", [r"column 'seed'"]))
    frame = base.copy()
    frame["score"] = frame["score"].astype(str)
    frame.loc[5, "score"] = "0,5"
    cases.append(_table_case("decimal-comma", frame, "parquet", [r"row 6", r"column 'score'"]))
    cases.append(_table_case("truncated", encode_table(base, "parquet")[:500], "parquet", [r"Parquet"]))
    frame = base.copy()
    frame["task"] = [{"a": 1}] * len(frame)
    cases.append(_table_case("dict-valued-task", frame, "parquet", [r"column 'task'"]))
    frame = base.copy()
    frame["score"] = frame["score"].astype(bool)
    cases.append(_table_case("bool-score", frame, "parquet", [r"column 'score'"]))
    # a large file with one bad row near its end
    big = pd.concat([good_table(seed=i) for i in range(40)], ignore_index=True)
    big["seed"] = np.repeat(np.arange(40), len(LANGUAGES) ** 2)
    big = big.astype({"score": object})
    big.loc[len(big) - 3, "score"] = "oops"
    cases.append(_table_case("large-bad-row", big, "csv", [rf"row {len(big) - 2}", r"column 'score'"]))
    return cases


def _config_case(name, text: bytes | str, where, area="pipeline", argv_extra=(), **kw) -> Case:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return Case(name=f"config/{name}", cli="fit",
                files={"t.csv": encode_table(good_table(), "csv"), "c.yaml": data},
                argv=["--data", "{d}/t.csv", "--config", "{d}/c.yaml", "--out", "{d}/out", "--quiet",
                      *argv_extra],
                where=[r"c\.yaml"] + where, area=area, out="out", **kw)


def config_cases() -> list[Case]:
    c = []
    pipeline = {
        "seed-true": ("seed: true\n", [r"seed"]),
        "seed-negative": ("seed: -3\n", [r"seed"]),
        "cv-int": ("cv: 5\n", [r"cv"]),
        "ols-string": ("ols: fast\n", [r"ols"]),
        "ols-n-boot-text": ("ols: {n_boot: many}\n", [r"n_boot"]),
        "mixed-ci-boot-text": ("mixed: {ci_boot: lots}\n", [r"ci_boot"]),
        "ranking-k-text": ("ranking: {k: three}\n", [r"ranking\.k|'k'"]),
        "fewshot-shares": ("fewshot: {target_shares: [2.0, x]}\n", [r"target_shares"]),
        "mixed-reml-text": ("mixed: {reml: maybe}\n", [r"reml"]),
        "report-text": ("report: sometimes\n", [r"report"]),
        "groups-unknown-feature": ("groups: {syntax: [no_such_feature]}\n", [r"no_such_feature"]),
        "latin-1": ("report: false\n# caf\xe9\n".encode("latin-1"), [r"UTF-8|encoding|byte"]),
        "features-string": ("features: syntactic_distance\n", [r"features"]),
        "features-unknown": ("features: [no_such_feature]\n", [r"no_such_feature"]),
        "cov-type": ("ols: {cov_type: HC9}\n", [r"cov_type"]),
        "cv-scheme": ("cv: {schemes: [leave-nothing-out]}\n", [r"schemes"]),
        "cv-k-one": ("cv: {k: 1}\n", [r"cv\.k"]),
        "max-folds-bool": ("cv: {max_folds: true}\n", [r"max_folds"]),
        "lexical-corpus": ("lexical_corpus: bible\n", [r"lexical_corpus"]),
        "subset-list": ("subset: [task]\n", [r"subset"]),
        "compare-unknown": ("groups: {a: [syntactic_distance]}\ncompare: [[a, b]]\n", [r"compare"]),
        "yaml-list": ("- 1\n- 2\n", [r"mapping|must be|config"]),
        "yaml-syntax": ("seed: [1, 2\n", [r"YAML|yaml|line"]),
        "yaml-tab": ("seed:\t1\n\tfoo: bar\n", [r"YAML|yaml|line"]),
        "nul-bytes": (b"seed: 1\x00\x00\n", [r"NUL|YAML|character|byte"]),
        "python-tag": ("seed: !!python/object/apply:os.system ['touch PWNED']\n", [r"YAML|tag|yaml"]),
        "unknown-key": ("sed: 3\n", [r"sed"]),
        "n-jobs-zero": ("cv: {n_jobs: 0}\n", [r"n_jobs"]),
        "seed-huge": ("seed: 100000000000000000000000\n", [r"seed"]),
        "mixed-formula-list": ("mixed: {formula: [a, b]}\n", [r"formula"]),
    }
    for name, (text, where) in pipeline.items():
        c.append(_config_case(name, text, where))
    hostile = {
        "formula-import": ("mixed: {formula: \"score ~ __import__('os').system('touch PWNED') + (1|source)\"}\n",
                           [r"mixed\.formula", r"refused"]),
        "formula-open": ("mixed: {formula: \"score ~ I(open('PWNED', 'w').close()) + (1|source)\"}\n",
                         [r"mixed\.formula"]),
        "formula-attribute": ("mixed: {formula: \"score ~ np.os.system('touch PWNED') + (1|source)\"}\n",
                              [r"mixed\.formula"]),
        "formula-lambda": ("mixed: {formula: \"score ~ (lambda: 1)() + (1|source)\"}\n", [r"mixed\.formula"]),
        "formula-subscript": ("mixed: {formula: \"score ~ x[0] + (1|source)\"}\n", [r"mixed\.formula"]),
        "formula-no-tilde": ("mixed: {formula: \"score + x\"}\n", [r"formula"]),
        "formula-unbalanced": ("mixed: {formula: \"score ~ (1|source\"}\n", [r"formula"]),
        "formula-dunder": ("mixed: {formula: \"score ~ x.__class__ + (1|source)\"}\n", [r"mixed\.formula"]),
        "formula-string": ("mixed: {formula: \"score ~ I('a') + (1|source)\"}\n", [r"mixed\.formula"]),
    }
    for name, (text, where) in hostile.items():
        c.append(_config_case(name, text, where, area="hostile"))
    seed_case = _config_case("cli-seed-negative", "report: false\n", [r"seed"], argv_extra=["--seed", "-1"])
    seed_case.where = [r"--seed", r"-1"]  # a command-line value: the option is named, not the config
    c.append(seed_case)
    c.append(Case(name="config/missing-file", cli="fit", files={"t.csv": encode_table(good_table(), "csv")},
                  argv=["--data", "{d}/t.csv", "--config", "{d}/absent.yaml", "--out", "{d}/out"],
                  where=[r"absent\.yaml"], out="out"))
    c.append(Case(name="cli/data-missing", cli="fit", files={},
                  argv=["--data", "{d}/absent.csv", "--out", "{d}/out"], where=[r"absent\.csv"], out="out"))
    c.append(Case(name="cli/out-is-a-file", cli="fit", files={"t.csv": encode_table(good_table(), "csv"),
                                                              "outfile": b"keep me"},
                  argv=["--data", "{d}/t.csv", "--out", "{d}/outfile", "--no-report"], where=[r"outfile"]))
    c.append(Case(name="cli/out-foreign-folder", cli="fit",
                  files={"t.csv": encode_table(good_table(), "csv"), "foreign/notes.txt": b"mine"},
                  argv=["--data", "{d}/t.csv", "--out", "{d}/foreign", "--no-report"], where=[r"foreign"]))
    return c


def _model_json() -> dict:
    """A real model.json: OLS on one pair feature, saved by xltstats.models.persist."""
    import tempfile

    from xltstats.models.ols import fit_ols
    from xltstats.models.persist import save_model

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"syntactic_distance": rng.uniform(0, 1, 40)})
    data["score"] = 0.8 - 0.3 * data["syntactic_distance"] + rng.normal(0, 0.05, 40)
    ols = fit_ols(data, response="score", features=["syntactic_distance"], cov_type="HC3")
    with tempfile.TemporaryDirectory() as folder:
        path = save_model(folder, ols=ols, features=["syntactic_distance"])
        return json.loads(path.read_text())


def _hybrid_model_json() -> dict:
    """A real model.json whose default is a hybrid (trees + random intercepts) on one pair feature."""
    from xltstats.models.hybrid import HybridEstimator

    document = _model_json()
    data = good_table()
    data["syntactic_distance"] = np.random.default_rng(1).uniform(0, 1, len(data))
    hybrid = HybridEstimator(["syntactic_distance"], n_estimators=30, inner_folds=2).fit(data)
    document["models"]["hybrid"] = json.loads(json.dumps(hybrid.to_spec()))
    document["default"] = "hybrid"
    return document


def predict_cases() -> list[Case]:
    c = []
    pairs = b"source,target\neng,deu\nfra,spa\n"

    def case(name, model, pairs_bytes=pairs, where=(), pairs_name="pairs.csv", area="hostile"):
        files = {"fit/manifest.json": b"{}", pairs_name: pairs_bytes}
        if model is not None:
            files["fit/model.json"] = model if isinstance(model, bytes) else json.dumps(model).encode()
        return Case(name=f"predict/{name}", cli="predict", files=files,
                    argv=["--fit", "{d}/fit", "--pairs", "{d}/" + pairs_name, "--out", "{d}/pred.csv"],
                    where=list(where), out="pred.csv", area=area)

    good = _model_json()
    # (case, path of the key in model.json, its new value or DELETE, the key the message names)
    edits = [
        ("missing-coefficients", ("models", "ols", "coefficients"), DELETE, "coefficients"),
        ("string-residual-variance", ("models", "ols", "residual_variance"), "small", "residual_variance"),
        ("string-coefficient", ("models", "ols", "coefficients"), [0.5, "x"], "coefficients"),
        ("covariance-shape", ("models", "ols", "covariance"), [[0.01]], "covariance"),
        ("terms-string", ("models", "ols", "terms"), "Intercept", "terms"),
        ("df-resid-string", ("models", "ols", "df_resid"), "many", "df_resid"),
        ("sds-string", ("models", "ols", "sds"), {"syntactic_distance": "x"}, "sds"),
        ("means-missing-feature", ("models", "ols", "means"), {}, r"means\.syntactic_distance"),
        ("standardise-string", ("models", "ols", "standardise"), "yes", "standardise"),
        ("kind-unknown", ("models", "ols", "kind"), "forest", "kind"),
        ("default-list", ("default",), ["ols"], "default"),
        ("model-array", ("models", "ols"), ["not", "a", "dict"], "ols"),
        ("nan-variance", ("models", "ols", "residual_variance"), float("nan"), "residual_variance"),
        ("models-list", ("models",), [], "models"),
    ]
    hybrid = _hybrid_model_json()
    edits += [("hybrid-" + name, ("models", "hybrid", *path), value, r"models\.hybrid\." + key) for name, path, value, key in [
        ("trees-garbage", ("trees",), "not a model", "trees"),
        ("trees-missing", ("trees",), DELETE, "trees"),
        ("rounds-string", ("n_rounds",), "ten", "n_rounds"),
        ("rounds-mismatch", ("n_rounds",), hybrid["models"]["hybrid"]["n_rounds"] + 1, "n_rounds"),
        ("features-count", ("features",), ["a", "b"], "features"),
        ("scores-negative", ("calibration_scores",), [0.5, -1.0], r"calibration_scores\[1\]"),
        ("scores-string", ("calibration_scores",), "wide", "calibration_scores"),
        ("boosted-unknown", ("boosted_random",), "some", "boosted_random"),
        ("random-missing", ("random",), DELETE, "random"),
        ("random-kind", ("random", "kind"), "ols", r"random\.kind"),
        ("random-levels", ("random", "random", 0, "levels"), "x", r"random\.random\[0\]\.levels"),
        ("random-variance", ("random", "residual_variance"), -1.0, r"random\.residual_variance"),
    ]]
    for name, path, value, key in edits:
        m = json.loads(json.dumps(hybrid if name.startswith("hybrid-") else good))
        parent = functools.reduce(operator.getitem, path[:-1], m)
        if value is DELETE:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
        c.append(case(name, json.dumps(m).encode(), where=[r"model\.json", key]))
    c.append(case("not-json", b"{not json", where=[r"model\.json"]))
    c.append(case("json-array", b"[1, 2]", where=[r"model\.json"]))
    c.append(case("latin-1", '{"format": "caf\xe9"}'.encode("latin-1"), where=[r"model\.json"]))
    c.append(case("no-model", None, where=[r"model\.json"]))
    c.append(case("pairs-no-target", good, pairs_bytes=b"source\neng\n", where=[r"pairs\.csv", r"target"]))
    c.append(case("pairs-unknown-language", good, pairs_bytes=b"source,target\neng,deu\nqqq,fra\n",
                  where=[r"pairs\.csv", r"row 2", r"source"]))
    c.append(case("pairs-empty", good, pairs_bytes=b"", where=[r"pairs\.csv"]))
    c.append(case("pairs-latin-1", good, pairs_bytes="source,target,x\neng,deu,caf\xe9\n".encode("latin-1"),
                  where=[r"pairs\.csv"]))
    c.append(case("pairs-missing-language", good, pairs_bytes=b"source,target\neng,\n",
                  where=[r"pairs\.csv", r"row 1", r"target"]))
    return c


def features_cases() -> list[Case]:
    c = []

    def case(name, files, argv, where):
        return Case(name=f"features/{name}", cli="features", files=files, argv=argv + ["--out", "{d}/f.csv"],
                    where=where, out="f.csv")

    c.append(case("unknown-language", {}, ["--languages", "eng,qqq"], [r"qqq"]))
    c.append(case("empty-languages", {}, ["--languages", ","], [r"languages"]))
    c.append(case("pairs-missing", {}, ["--pairs", "{d}/absent.csv"], [r"absent\.csv"]))
    c.append(case("pairs-no-source", {"p.csv": b"x,target\n1,eng\n"}, ["--pairs", "{d}/p.csv"],
                  [r"p\.csv", r"source"]))
    c.append(case("pairs-latin-1", {"p.csv": "source,target\neng,caf\xe9\n".encode("latin-1")},
                  ["--pairs", "{d}/p.csv"], [r"p\.csv"]))
    c.append(case("pairs-unknown-code", {"p.csv": b"source,target\neng,deu\nzzz9,fra\n"},
                  ["--pairs", "{d}/p.csv"], [r"p\.csv", r"row 2"]))
    c.append(case("unknown-feature", {}, ["--languages", "eng,deu", "--features", "nonsense"], [r"nonsense"]))
    return c


def _study(**override) -> dict:
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "tasks"
    study = {"name": "s", "model": {"name": "tiny", "config": {"model_type": "bert", "hidden_size": 32,
                                                               "num_hidden_layers": 1, "num_attention_heads": 2,
                                                               "intermediate_size": 64},
                                    "tokenizer": {"train": True, "vocab_size": 200}},
             "tasks": [{"name": "xnli", "data": str(fixtures / "xnli")}],
             "languages": ["eng", "deu"], "few_shot": [0], "seeds": [1]}
    study.update(override)
    return study


def study_cases() -> list[Case]:
    import yaml

    c = []

    def case(name, text, where):
        data = text if isinstance(text, bytes) else (text if isinstance(text, str) else yaml.safe_dump(text)).encode()
        return Case(name=f"study/{name}", cli="experiments", files={"s.yaml": data},
                    argv=["plan", "{d}/s.yaml"], where=[r"s\.yaml"] + where)

    c.append(case("unknown-field", _study(colour="red"), [r"colour"]))
    c.append(case("unknown-task", _study(tasks=["sentiment"]), [r"tasks", r"sentiment"]))
    c.append(case("unknown-language", _study(languages=["eng", "qqq"]), [r"languages|qqq"]))
    c.append(case("seeds-text", _study(seeds="one"), [r"seeds"]))
    c.append(case("seeds-bool", _study(seeds=[True]), [r"seeds"]))
    c.append(case("few-shot-negative", _study(few_shot=[-1]), [r"few_shot"]))
    c.append(case("lr-text", _study(hyperparameters={"learning_rate": "fast"}), [r"learning_rate"]))
    c.append(case("batch-zero", _study(hyperparameters={"batch_size": 0}), [r"batch_size"]))
    c.append(case("unknown-hyperparameter", _study(hyperparameters={"lr": 1}), [r"lr"]))
    c.append(case("no-model", {k: v for k, v in _study().items() if k != "model"}, [r"model"]))
    c.append(case("yaml-list", "- a\n- b\n", [r"mapping|must be"]))
    c.append(case("yaml-syntax", "name: [a\n", [r"YAML|line"]))
    c.append(case("latin-1", "name: caf\xe9\n".encode("latin-1"), [r"UTF-8|encoding|byte"]))
    c.append(case("python-tag", "name: !!python/object/apply:os.system ['touch PWNED']\n", [r"YAML|tag"]))
    c.append(case("in-language-text", _study(in_language="yes"), [r"in_language"]))
    c.append(case("missing-seeds", {k: v for k, v in _study().items() if k != "seeds"}, [r"seeds"]))
    return c


def report_cases() -> list[Case]:
    return [
        Case(name="report/missing-folder", cli="report", files={}, argv=["--fit", "{d}/absent"], where=[r"absent"]),
        Case(name="report/folder-is-file", cli="report", files={"fit": b"x"}, argv=["--fit", "{d}/fit"],
             where=[r"fit"]),
    ]


def all_cases(include_slow: bool = True) -> list[Case]:
    cases = table_cases() + config_cases() + predict_cases() + features_cases() + study_cases() + report_cases()
    return [c for c in cases if include_slow or not c.slow]


# ------------------------------------------------------------------------------------ harness

def _main(cli: str):
    if cli == "fit":
        from xltstats.fit import main
    elif cli == "predict":
        from xltstats.predict import main
    elif cli == "features":
        from xltstats.features.__main__ import main
    elif cli == "report":
        from xltstats.report.__main__ import main
    elif cli == "reproduce":
        from xltstats.reproduce import main
    else:
        from xltstats.experiments.__main__ import main
    return main


MODULES = {"fit": "xltstats.fit", "predict": "xltstats.predict", "features": "xltstats.features",
           "report": "xltstats.report", "reproduce": "xltstats.reproduce", "experiments": "xltstats.experiments"}


def _tree(folder: Path) -> dict:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            out[str(path.relative_to(folder)) + "/"] = ""
    return out


@dataclass
class Outcome:
    case: Case
    verdict: str      # clear | unclear | traceback | silent | partial | code-ran
    code: object
    stderr: str
    detail: str = ""


def prepare(case: Case, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if case.out and case.cli == "fit":
        previous = folder / case.out
        previous.mkdir()
        (previous / "manifest.json").write_text('{"previous": true}\n')
        (previous / "results.csv").write_text("previous output\n")
    if case.setup:
        case.setup(folder)


def run_case(case: Case, folder: Path, *, subprocess_run: bool = False) -> Outcome:
    prepare(case, folder)
    before = _tree(folder)
    argv = [a.replace("{d}", str(folder)) for a in case.argv]
    code, err = None, ""
    old_cwd = os.getcwd()
    os.chdir(folder)
    try:
        if subprocess_run:
            env = dict(os.environ, MPLBACKEND="Agg")
            done = subprocess.run([sys.executable, "-m", MODULES[case.cli], *argv], capture_output=True,
                                  text=True, env=env, timeout=600)
            code, err = done.returncode, done.stderr
        else:
            buffer = io.StringIO()
            try:
                with contextlib.redirect_stderr(buffer), contextlib.redirect_stdout(io.StringIO()):
                    code = _main(case.cli)(argv)
            except SystemExit as exc:  # argparse
                code = exc.code
            except BaseException as exc:  # noqa: BLE001 - this is what the corpus looks for
                import traceback

                err = buffer.getvalue() + "Traceback (in-process):\n" + "".join(
                    traceback.format_exception(type(exc), exc, exc.__traceback__)[-4:])
                return Outcome(case, "traceback", None, err)
            err = buffer.getvalue()
    finally:
        os.chdir(old_cwd)
    after = _tree(folder)
    if (folder / MARKER).exists():
        return Outcome(case, "code-ran", code, err)
    if "Traceback" in err or code not in (0, 2):
        return Outcome(case, "traceback", code, err)
    if code == 0:
        return Outcome(case, "silent", code, err)
    left = sorted(set(after) - set(before))
    changed = sorted(k for k in before if after.get(k) != before[k])
    if left or changed:
        return Outcome(case, "partial", code, err, f"left {left} changed {changed}")
    missing = [w for w in case.where if not re.search(w, err)]
    if missing or re.search(r"np\.(float|int)\d*\(", err):
        return Outcome(case, "unclear", code, err, f"message lacks {missing}")
    return Outcome(case, "clear", code, err)


def summarise(outcomes: list[Outcome]) -> dict:
    counts = {"inputs tried": len(outcomes)}
    for verdict in ("clear", "unclear", "traceback", "silent", "partial", "code-ran"):
        counts[verdict] = sum(o.verdict == verdict for o in outcomes)
    return counts


def main(argv=None) -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="include the slow cases")
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("-v", action="store_true", help="print every failing case's message")
    args = parser.parse_args(argv)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="xlt-corpus-") as scratch:
        for i, case in enumerate(c for c in all_cases(args.all) if args.k in c.name):
            import time

            started = time.perf_counter()
            outcome = run_case(case, Path(scratch) / f"{i:04d}")
            outcomes.append(outcome)
            seconds = time.perf_counter() - started
            if outcome.verdict != "clear" or seconds > 2:
                print(f"{outcome.verdict:9s} [{case.area}] {case.name}: code={outcome.code} "
                      f"{seconds:.1f}s {outcome.detail}", flush=True)
                if args.v:
                    print("    " + outcome.stderr.strip().replace("\n", "\n    ")[-1500:])
    print(json.dumps(summarise(outcomes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
