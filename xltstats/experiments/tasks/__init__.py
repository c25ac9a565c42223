"""Task registry of the fine-tuning runner.

A task is one small module in this package that builds a :class:`Task` and passes it to
:func:`register`.  Every module here is imported on first use of the registry, so adding a task
is adding one file.  Nothing here imports torch.

Examples are normalised to plain dictionaries:

* ``classification`` tasks: ``{"text": [str, ...], "label": int}`` (one or two input texts);
* ``tagging`` tasks: ``{"tokens": [str, ...], "tags": [int, ...]}``.

Data sources a task can read (chosen per task in the study config with ``data:``):

* ``hub``: the Hugging Face hub through :func:`datasets.load_dataset` (``hub_id`` plus the
  per-language ``hub_configs``);
* a local directory ``DIR`` holding ``DIR/<iso639-3>/<split>.jsonl`` files (fields as in the hub
  dataset: e.g. ``premise``, ``hypothesis``, ``label`` for XNLI; ``tokens`` and ``tags`` for tagging);
* task-specific named sources (``ud`` for UD POS: pinned CoNLL-U files fetched through
  :mod:`xltstats.datasets.fetch`).
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...errors import InputError
from ...registry import Registry

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Task:
    """Everything the runner needs to know about one task."""

    name: str
    kind: str  # "classification" or "tagging"
    labels: tuple[str, ...]
    metric: str  # "accuracy" or "f1" (entity-level span F1 over IOB2 tags)
    description: str = ""
    hub_id: str | None = None
    hub_configs: dict[str, str] = field(default_factory=dict)  # ISO 639-3 -> hub config name
    hub_splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "test": "test"})
    text_fields: tuple[str, ...] = ()  # classification: hub/jsonl fields holding the input texts
    label_field: str = "label"
    tokens_field: str = "tokens"  # tagging
    tags_field: str = "tags"  # tagging
    drop_tags: tuple[str, ...] = ()  # tagging: tokens with these tags are left out (UD "_")
    prompt: str = ""  # seq2seq input template; fields by name, e.g. "xnli premise: {premise} ..."
    verbalizer: dict[str, str] = field(default_factory=dict)  # label -> target word (seq2seq)
    default_data: str = "hub"
    # named data sources: name -> (languages() -> set of ISO 639-3, load(lang, split) -> examples)
    named_sources: dict[str, tuple[Callable[[], set], Callable[[str, str], list]]] = field(
        default_factory=dict
    )

    def __post_init__(self):
        if self.kind not in ("classification", "tagging"):
            raise ValueError(f"task {self.name}: kind must be classification or tagging")
        if self.metric not in ("accuracy", "f1"):
            raise ValueError(f"task {self.name}: metric must be accuracy or f1")

    # ---- labels and seq2seq targets -------------------------------------------------------
    def verbalize(self, label: int) -> str:
        name = self.labels[label]
        return self.verbalizer.get(name, name)

    def seq2seq_input(self, example: dict) -> str:
        if self.kind == "classification":
            values = dict(zip(self.text_fields, example["text"]))
            return self.prompt.format(**values) if self.prompt else " | ".join(example["text"])
        return (self.prompt + " " if self.prompt else "") + " ".join(example["tokens"])

    def seq2seq_target(self, example: dict) -> str:
        if self.kind == "classification":
            return self.verbalize(example["label"])
        return " ".join(self.labels[t] for t in example["tags"])

    def parse_seq2seq_output(self, text: str, example: dict):
        """Prediction (label index, or list of tag indices) from generated text; -1 = invalid."""
        if self.kind == "classification":
            words = {self.verbalize(i): i for i in range(len(self.labels))}
            return words.get(text.strip(), -1)
        index = {name: i for i, name in enumerate(self.labels)}
        # word-level decoders may split "B-PER" into "B - PER"
        text = re.sub(r"\s*-\s*", "-", text)
        pred = [index.get(w, -1) for w in text.split()]
        n = len(example["tokens"])
        return (pred + [-1] * n)[:n]

    # ---- data -------------------------------------------------------------------------------
    def data_languages(self, data: str) -> set[str]:
        """ISO 639-3 codes that have data in source ``data`` (hub, a named source, or a dir)."""
        if data == "hub":
            return set(self.hub_configs)
        if data in self.named_sources:
            return set(self.named_sources[data][0]())
        root = Path(data)
        if not root.is_dir():
            return set()
        return {p.name for p in root.iterdir() if (p / "test.jsonl").is_file()}

    def has_split(self, data: str, lang: str, split: str) -> bool:
        if data == "hub" or data in self.named_sources:
            return lang in self.data_languages(data)
        return (Path(data) / lang / f"{split}.jsonl").is_file()

    def load(self, data: str, lang: str, split: str) -> list[dict]:
        """Normalised examples of one language and split."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}")
        if data == "hub":
            return self._load_hub(lang, split)
        if data in self.named_sources:
            return self.named_sources[data][1](lang, split)
        return self._load_jsonl(Path(data) / lang / f"{split}.jsonl")

    def size(self, data: str, lang: str, split: str) -> int:
        """Number of examples of a split: hub metadata when available, else by loading it."""
        if data == "hub":
            try:
                import datasets

                builder = datasets.load_dataset_builder(self.hub_id, self.hub_configs[lang])
                n = builder.info.splits[self.hub_splits[split]].num_examples
                if n:
                    return int(n)
            except Exception:  # noqa: BLE001 - no metadata: count by loading
                pass
        return len(self.load(data, lang, split))

    def _label_index(self, value, file, row, column):
        if isinstance(value, str) and not value.lstrip("-").isdigit():
            if value not in self.labels:
                raise InputError(
                    f"unknown label {value!r}; labels of task {self.name}: {', '.join(self.labels)}",
                    file=file, row=row, column=column,
                )
            return self.labels.index(value)
        i = int(value)
        if not 0 <= i < len(self.labels):
            raise InputError(f"label {i} out of range 0..{len(self.labels) - 1}",
                             file=file, row=row, column=column)
        return i

    def normalise(self, record: dict, file=None, row=None) -> dict:
        if self.kind == "classification":
            for f in (*self.text_fields, self.label_field):
                if f not in record:
                    raise InputError(f"missing field {f!r}", file=file, row=row, column=f)
            return {
                "text": [str(record[f]) for f in self.text_fields],
                "label": self._label_index(record[self.label_field], file, row, self.label_field),
            }
        tokens = [str(t) for t in record[self.tokens_field]]
        raw_tags = list(record[self.tags_field])
        if len(tokens) != len(raw_tags):
            raise InputError(f"{len(tokens)} tokens but {len(raw_tags)} tags",
                             file=file, row=row, column=self.tags_field)
        kept = [(w, t) for w, t in zip(tokens, raw_tags) if t not in self.drop_tags]
        tokens = [w for w, _ in kept]
        tags = [self._label_index(t, file, row, self.tags_field) for _, t in kept]
        return {"tokens": tokens, "tags": tags}

    def _load_jsonl(self, path: Path) -> list[dict]:
        if not path.is_file():
            raise InputError("file not found", file=path)
        out = []
        with open(path, encoding="utf-8") as fh:
            for row, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"not valid JSON ({exc.msg})", file=path, row=row) from None
                out.append(self.normalise(record, path, row))
        return out

    def _load_hub(self, lang: str, split: str) -> list[dict]:
        import datasets  # lazy: only users loading from the hub need it

        ds = datasets.load_dataset(self.hub_id, self.hub_configs[lang], split=self.hub_splits[split])
        feature = ds.features.get(self.tags_field if self.kind == "tagging" else self.label_field)
        names = getattr(getattr(feature, "feature", feature), "names", None)
        out = []
        for row, record in enumerate(ds, 1):
            record = dict(record)
            if names is not None:  # ClassLabel ids of the hub dataset -> our label order
                key = self.tags_field if self.kind == "tagging" else self.label_field
                value = record[key]
                record[key] = [names[v] for v in value] if isinstance(value, list) else names[value]
            if self.kind == "classification" and record[self.label_field] in (-1, None):
                continue  # unlabelled rows (e.g. PAWS-X test rows without gold)
            out.append(self.normalise(record, f"{self.hub_id}/{self.hub_configs[lang]}", row))
        return out


def _load_all() -> None:
    """Import every task module of this package (each registers its task)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


#: The registered tasks, filled by importing this package's modules on first lookup.
TASKS: Registry[Task] = Registry("task", loader=_load_all)


def register(task: Task) -> Task:
    """Add ``task`` to the registry (called by each task module at import)."""
    return TASKS.add(task.name, task, replace=True)


def list_tasks() -> list[str]:
    """Names of the registered tasks, sorted."""
    return sorted(TASKS.names())


def get_task(name: str) -> Task:
    """The registered task ``name``; :class:`ConfigError` listing the available tasks otherwise."""
    return TASKS.get(name)
