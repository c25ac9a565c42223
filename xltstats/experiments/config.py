"""Study configuration: load a YAML file, validate every field before any training.

A study is a grid ``model x tasks x sources x targets x few-shot sizes x seeds``.  See
``experiments/README.md`` for the fields; :func:`load_study` raises :class:`ConfigError`
naming the file and the field (``tasks[1]``, ``hyperparameters.learning_rate``) for any problem.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError
from .tasks import get_task, list_tasks

DEFAULT_HYPERPARAMETERS = {
    "learning_rate": 3e-5,
    "batch_size": 32,
    "epochs": 3.0,
    "max_steps": None,  # overrides epochs when set
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
    "max_length": 128,
    "max_target_length": 64,  # seq2seq labels
    "eval_batch_size": 256,
    "max_train_examples": None,  # cap on source training examples (sampled by seed)
    "max_test_examples": None,  # cap on evaluation examples per target (first N, fixed)
    "bf16": True,  # bf16 autocast, used only on CUDA
    "tf32": True,
    "compile": False,  # torch.compile the model (CUDA)
    "length_group_size": 50,  # batches per length-sorted mega-batch
    "num_threads": None,  # torch CPU threads
}
DEFAULT_FEW_SHOT_HYPERPARAMETERS = {"learning_rate": None, "batch_size": 16, "epochs": 10.0,
                                    "max_steps": None, "warmup_ratio": 0.0}
_TOP_LEVEL = {"name", "model", "tasks", "languages", "sources", "targets", "in_language", "few_shot",
              "seeds", "hyperparameters", "few_shot_hyperparameters", "run_dir", "cache_dir", "data",
              "metrics", "description", "keep_checkpoints", "source_budget", "representations",
              "adapter_study"}


@dataclass(frozen=True)
class TaskSpec:
    name: str
    data: str  # "hub", a named source ("ud") or an absolute directory
    metric: str
    few_shot: tuple[int, ...] | None = None  # overrides the study's few-shot sizes for this task


@dataclass
class StudyConfig:
    path: Path
    name: str
    model: dict  # {"name", "pretrained"} or {"name", "config", "tokenizer"}
    tasks: list[TaskSpec]
    sources: list[str]
    targets: list[str]
    in_language: bool
    few_shot: list[int]
    seeds: list[int]
    hyperparameters: dict
    few_shot_hyperparameters: dict
    run_dir: Path
    cache_dir: Path
    keep_checkpoints: bool = True
    raw: dict = field(repr=False, default_factory=dict)
    # multi-source / re-init / representation studies (xltstats.experiments.studyspec)
    source_sets: list[tuple[str, ...]] = field(default_factory=list)  # [] = one set per source
    source_budget: int | None = None
    reinit: list[tuple[int, ...]] | None = None  # None: no re-init; else conditions, () = baseline
    representations: dict | None = None
    #: whether ``run_dir`` was written in the config (else it follows ``--results``)
    run_dir_from_config: bool = False
    adapter_study: object = None  # adapter_study.AdapterStudy (language adapters, arithmetic)

    @property
    def model_name(self) -> str:
        return self.model["name"]

    @property
    def config_hash(self) -> str:
        """Hash of everything that changes a score other than the grid cell itself.

        Languages, few-shot sizes and seeds are left out: they are part of each row's key, so
        adding a target language to a study reuses every row already computed.
        """
        payload = {
            "model": self.model,
            "hyperparameters": self.hyperparameters,
            "few_shot_hyperparameters": self.few_shot_hyperparameters,
        }
        if self.adapter_study is not None:
            payload["adapter_study"] = self.adapter_study.hash_payload
        return _hash(payload)[:16]

    def few_shot_sizes(self, task: str) -> list[int]:
        spec = self.task(task)
        return list(spec.few_shot) if spec.few_shot is not None else list(self.few_shot)

    def task(self, name: str) -> TaskSpec:
        return next(t for t in self.tasks if t.name == name)


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def to_iso639_3(code: str) -> str:
    """ISO 639-3 code of ``code`` (:func:`xltstats.languages.to_iso639_3`; ValueError when unknown)."""
    from ..languages import to_iso639_3 as convert

    return convert(code)


class _Validator:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, fieldname: str, message: str):
        raise ConfigError(f"{self.path}: field '{fieldname}': {message}")

    def resolve(self, value) -> Path:
        """A path given in the config: relative paths are relative to the config's folder."""
        return _resolve(self.path.parent.resolve(), value)

    def languages(self, fieldname: str, values) -> list[str]:
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not values:
            self.fail(fieldname, "must be a non-empty list of language codes")
        out = []
        for i, v in enumerate(values):
            try:
                code = to_iso639_3(str(v))
            except ValueError as exc:
                self.fail(f"{fieldname}[{i}]", str(exc))
            if code not in out:
                out.append(code)
        return out

    def int_list(self, fieldname: str, values, minimum: int) -> list[int]:
        if isinstance(values, int) and not isinstance(values, bool):
            values = [values]
        if not isinstance(values, list) or not values:
            self.fail(fieldname, "must be a non-empty list of integers")
        out = []
        for i, v in enumerate(values):
            self.integer(f"{fieldname}[{i}]", v, minimum)
            if v not in out:
                out.append(v)
        return sorted(out)

    def integer(self, fieldname: str, value, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(fieldname, f"must be an integer >= {minimum}, got {value!r}")
        return value

    def numbers(self, fieldname: str, given, defaults: dict, *, integers: dict[str, int],
                what: str = "field", none_ok: bool = False) -> dict:
        """``defaults`` updated with the mapping ``given``: a key not in ``defaults`` is refused
        ("unknown WHAT"), a key whose default is a bool needs true/false, any other value a
        non-negative number (a numeric string counts), whole and >= ``integers[key]`` for the keys
        of ``integers``; ``none_ok``: null is accepted for any number."""
        given = given or {}
        if not isinstance(given, dict):
            self.fail(fieldname, "must be a mapping")
        unknown = set(given) - set(defaults)
        if unknown:
            self.fail(f"{fieldname}.{sorted(unknown)[0]}",
                      f"unknown {what}; known: {', '.join(sorted(defaults))}")
        out = dict(defaults)
        for key, value in given.items():
            if isinstance(defaults[key], bool):
                if not isinstance(value, bool):
                    self.fail(f"{fieldname}.{key}", f"must be true or false, got {value!r}")
            elif value is not None or not none_ok:
                if isinstance(value, str):
                    try:
                        value = float(value)
                    except ValueError:
                        self.fail(f"{fieldname}.{key}", f"must be a number, got {value!r}")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    self.fail(f"{fieldname}.{key}", f"must be a non-negative number, got {value!r}")
                if key in integers:
                    if value != int(value) or value < integers[key]:
                        self.fail(f"{fieldname}.{key}", f"must be a positive integer, got {value!r}")
                    value = int(value)
            out[key] = value
        return out


#: Hyperparameters that are counts (whole numbers >= 1).
INTEGER_HYPERPARAMETERS = {key: 1 for key in (
    "batch_size", "eval_batch_size", "max_length", "max_target_length", "max_steps",
    "max_train_examples", "max_test_examples", "length_group_size", "num_threads")}


def load_study(path, *, check_data: bool = True) -> StudyConfig:
    """Read and validate a study config; :class:`ConfigError` names the bad field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: study config not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        data = path.read_bytes()
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at byte "
                          f"{exc.start + 1:,} of the file); save the config as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_study(raw, path, check_data=check_data)


def run_dir_for_results(results) -> Path:
    """The run folder of a study whose config names none: beside its results file,
    ``results/tiny.csv`` -> ``results/tiny.run/`` (the same folder for any format of the table)."""
    results = Path(results).expanduser().resolve()
    return results.parent / f"{results.stem}.run"


def with_run_dir(study: StudyConfig, run_dir) -> StudyConfig:
    """``study`` with another run folder (the cache moves with it unless the config sets one)."""
    import dataclasses

    run_dir = Path(run_dir).expanduser().resolve()
    cache = study.cache_dir if study.raw.get("cache_dir") else run_dir / "cache"
    return dataclasses.replace(study, run_dir=run_dir, cache_dir=cache)


def choose_run_dir(study: StudyConfig, run_dir=None, results=None) -> StudyConfig:
    """``--run-dir`` first, then the config's ``run_dir``, then the folder beside ``--results``,
    then ``runs/<name>`` beside the config."""
    if run_dir is not None:
        return with_run_dir(study, run_dir)
    if study.run_dir_from_config or results is None:
        return study
    return with_run_dir(study, run_dir_for_results(results))


def _resolve(base: Path, value: str) -> Path:
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def parse_study(raw, path, *, check_data: bool = True) -> StudyConfig:
    path = Path(path)
    v = _Validator(path)
    base = path.parent.resolve()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a study config must be a YAML mapping")
    unknown = set(raw) - _TOP_LEVEL
    if unknown:
        v.fail(sorted(unknown)[0], f"unknown field; known fields: {', '.join(sorted(_TOP_LEVEL))}")
    for required in ("model", "tasks", "seeds"):
        if raw.get(required) in (None, [], ""):
            v.fail(required, "missing (required)")
    if "languages" not in raw and not ("sources" in raw and "targets" in raw):
        v.fail("languages", "missing: give 'languages' (sources = targets) or both 'sources' and 'targets'")

    # model
    model = raw["model"]
    if isinstance(model, str):
        local = _resolve(base, model)
        model = {"name": model, "pretrained": str(local) if local.exists() else model}
    elif isinstance(model, dict):
        model = dict(model)
        if "pretrained" in model:
            local = _resolve(base, model["pretrained"])
            name = model.get("name", str(model["pretrained"]))
            model["name"] = name
            if local.exists():
                model["pretrained"] = str(local)
        elif "config" in model:
            if not isinstance(model["config"], dict) or "model_type" not in model["config"]:
                v.fail("model.config", "must be a mapping with a 'model_type' (e.g. bert, t5)")
            tok = model.get("tokenizer")
            if tok is None:
                v.fail("model.tokenizer", "missing: a tokenizer directory, or {train: true, vocab_size: N}")
            if isinstance(tok, dict):
                if not tok.get("train"):
                    v.fail("model.tokenizer", "a mapping must say 'train: true' (train on the study's text)")
                size = tok.get("vocab_size", 2000)
                if not isinstance(size, int) or size < 100:
                    v.fail("model.tokenizer.vocab_size", f"must be an integer >= 100, got {size!r}")
                model["tokenizer"] = {"train": True, "vocab_size": size}
            else:
                tok_path = _resolve(base, tok)
                if not tok_path.is_dir():
                    v.fail("model.tokenizer", f"tokenizer directory not found: {tok_path}")
                model["tokenizer"] = str(tok_path)
            model.setdefault("name", f"random-{model['config']['model_type']}")
        else:
            v.fail("model", "a mapping needs 'pretrained' (hub id or path) or 'config' + 'tokenizer'")
        extra = set(model) - {"name", "pretrained", "config", "tokenizer", "reinit_layers"}
        if extra:
            v.fail(f"model.{sorted(extra)[0]}",
                   "unknown field; known: name, pretrained, config, tokenizer, reinit_layers")
    else:
        v.fail("model", "must be a hub id / path or a mapping")

    # tasks
    tasks_raw = raw["tasks"]
    if isinstance(tasks_raw, str):
        tasks_raw = [tasks_raw]
    if not isinstance(tasks_raw, list):
        v.fail("tasks", "must be a list of task names or mappings {name, data, metric}")
    data_map = raw.get("data") or {}
    metric_map = raw.get("metrics") or {}
    if not isinstance(data_map, dict):
        v.fail("data", "must be a mapping task -> hub | ud | directory")
    tasks: list[TaskSpec] = []
    for i, item in enumerate(tasks_raw):
        spec = {"name": item} if isinstance(item, str) else item
        if not isinstance(spec, dict) or "name" not in spec:
            v.fail(f"tasks[{i}]", "must be a task name or a mapping with 'name'")
        try:
            task = get_task(str(spec["name"]))
        except ConfigError as exc:
            v.fail(f"tasks[{i}]", str(exc))
        data = spec.get("data", data_map.get(task.name, task.default_data))
        if data != "hub" and data not in task.named_sources:
            d = _resolve(base, data)
            if not d.is_dir():
                named = ", ".join(["hub", *task.named_sources])
                v.fail(f"tasks[{i}].data", f"{data!r} is neither a data source ({named}) nor a directory")
            data = str(d)
        metric = spec.get("metric", metric_map.get(task.name, task.metric))
        if metric not in ("accuracy", "f1"):
            v.fail(f"tasks[{i}].metric", f"unknown metric {metric!r}; known: accuracy, f1")
        if metric != task.metric:
            v.fail(f"tasks[{i}].metric", f"task {task.name} is scored with {task.metric}")
        few = None
        if "few_shot" in spec:
            few = tuple(v.int_list(f"tasks[{i}].few_shot", spec["few_shot"], 0))
        extra = set(spec) - {"name", "data", "metric", "few_shot"}
        if extra:
            v.fail(f"tasks[{i}].{sorted(extra)[0]}", "unknown field; known: name, data, metric, few_shot")
        if any(t.name == task.name for t in tasks):
            v.fail(f"tasks[{i}]", f"task {task.name} listed twice")
        tasks.append(TaskSpec(task.name, str(data), metric, few))

    from .studyspec import parse_extensions

    model, ext = parse_extensions(raw, model, v)
    sources = ext["sources"] if ext["sources"] is not None else \
        v.languages("sources" if "sources" in raw else "languages", raw.get("sources", raw.get("languages")))
    targets = v.languages("targets" if "targets" in raw else "languages",
                          raw.get("targets", raw.get("languages")))
    few_shot = v.int_list("few_shot", raw.get("few_shot", [0]), 0)
    seeds = v.int_list("seeds", raw["seeds"], 0)
    in_language = raw.get("in_language", True)
    if not isinstance(in_language, bool):
        v.fail("in_language", "must be true or false")
    hp = v.numbers("hyperparameters", raw.get("hyperparameters"), DEFAULT_HYPERPARAMETERS,
                   integers=INTEGER_HYPERPARAMETERS, what="hyperparameter", none_ok=True)
    fhp = v.numbers("few_shot_hyperparameters", raw.get("few_shot_hyperparameters"),
                    DEFAULT_FEW_SHOT_HYPERPARAMETERS, integers=INTEGER_HYPERPARAMETERS,
                    what="hyperparameter", none_ok=True)
    if fhp["learning_rate"] is None:
        fhp["learning_rate"] = hp["learning_rate"]

    keep = raw.get("keep_checkpoints", True)
    if not isinstance(keep, bool):
        v.fail("keep_checkpoints", "must be true or false")
    name = str(raw.get("name") or path.stem)
    run_dir = _resolve(base, raw.get("run_dir", f"runs/{name}"))
    cache = _resolve(base, raw["cache_dir"]) if raw.get("cache_dir") else run_dir / "cache"
    study = StudyConfig(path=path, name=name, model=model, tasks=tasks, sources=sources,
                        targets=targets, in_language=in_language, few_shot=few_shot, seeds=seeds,
                        hyperparameters=hp, few_shot_hyperparameters=fhp, run_dir=run_dir,
                        cache_dir=cache, keep_checkpoints=keep, raw=raw,
                        source_sets=ext["source_sets"], source_budget=ext["source_budget"],
                        reinit=ext["reinit"], representations=ext["representations"],
                        run_dir_from_config=bool(raw.get("run_dir")))
    if study.representations is not None and not keep:
        v.fail("keep_checkpoints", "representations need the fine-tuned checkpoints: set keep_checkpoints: true")
    if check_data:
        check_languages(study, v)
    if raw.get("adapter_study") is not None:
        from .adapter_study import parse_adapter_study

        study.adapter_study = parse_adapter_study(raw["adapter_study"], study, v)
    return study


def check_languages(study: StudyConfig, v: _Validator | None = None) -> None:
    """Every source has training data, every target test data, few-shot targets training data."""
    v = v or _Validator(study.path)
    for spec in study.tasks:
        task = get_task(spec.name)
        available = task.data_languages(spec.data)
        where = "the hub configs" if spec.data == "hub" else spec.data
        for role, langs, split in (("sources", study.sources, "train"),
                                   ("targets", study.targets, "test")):
            for lang in langs:
                if lang not in available or not task.has_split(spec.data, lang, split):
                    v.fail(role, f"language {lang!r} has no {split} data for task {spec.name} in "
                                 f"{where}; available: {', '.join(sorted(available)) or 'none'}")
        if any(n > 0 for n in study.few_shot_sizes(spec.name)):
            for lang in study.targets:
                if not task.has_split(spec.data, lang, "train"):
                    v.fail("few_shot", f"target {lang!r} has no train split for task {spec.name} "
                                       "to draw few-shot examples from")


__all__ = ["StudyConfig", "TaskSpec", "load_study", "parse_study", "check_languages",
           "DEFAULT_HYPERPARAMETERS", "list_tasks"]
