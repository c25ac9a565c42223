"""Config fields of multi-source, re-initialisation and representation studies.

Parsed by :func:`xltstats.experiments.config.parse_study` (which stays the one entry point):

* ``sources:`` entries may be languages, sets (``[eng, spa, deu]``) or generators (``all 3-sets of
  [ara, deu, eng, spa, fra, rus, zho]``, ``all 1..3-sets of [...]``, ``sizes 1..5 of [eng, spa, deu,
  zho, fra]``, or the mappings ``{all: 3, of: [...]}``, ``{sizes: [1, 5], of: [...]}``), see
  :mod:`xltstats.studies.multisource.sets`;
* ``source_budget: N``: total training examples of every run, split evenly over a set's languages
  (:mod:`xltstats.experiments.multisource`);
* ``model.reinit_layers``: ``[0, 1]`` (one condition), ``[[0, 1], [2, 3]]`` (several) — 0-based encoder
  block indices; the baseline ``reinit=none`` is always run too (every drop needs it);
* ``representations:``: dump mean-pooled hidden states of every layer for PUD parallel sentences,
  for the pretrained model and each fine-tuned checkpoint, then CKA and mingling tables::

      representations:
        languages: [eng, fra, deu]    # PUD languages (default: the study's targets and sources)
        sentences: test               # test (the 200 held-out PUD sentences) | all (1000)
        n_sentences: null             # first N of those (default: all)
        batch_size: 32
        max_length: 128
        checkpoints: all              # all | pretrained | fine-tuned
        cka: {kernels: [linear, rbf-muller], reference: eng, n_boot: 1000, n_batches: 4}
        tsne: true
"""
from __future__ import annotations

import json
from pathlib import Path

REPRESENTATION_DEFAULTS = {"languages": None, "sentences": "test", "n_sentences": None, "batch_size": 32,
                           "max_length": 128, "checkpoints": "all", "cka": None, "tsne": True}
CKA_DEFAULTS = {"kernels": ["linear"], "reference": "eng", "n_boot": 1000, "n_batches": 4, "seed": 0}


def _known_layers(model: dict) -> int | None:
    """Number of encoder blocks when it can be known without the network."""
    if "config" in model:
        cfg = model["config"]
        for key in ("num_hidden_layers", "num_layers", "n_layer"):
            if isinstance(cfg.get(key), int):
                return cfg[key]
        try:
            from transformers import AutoConfig

            c = AutoConfig.for_model(cfg["model_type"])
            return getattr(c, "num_hidden_layers", None)
        except Exception:  # noqa: BLE001 - unknown model type is reported elsewhere
            return None
    path = Path(str(model.get("pretrained", ""))) / "config.json"
    if path.is_file():
        try:
            cfg = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        for key in ("num_hidden_layers", "num_layers", "n_layer"):
            if isinstance(cfg.get(key), int):
                return cfg[key]
    return None


def parse_reinit(value, model: dict, v) -> list[tuple[int, ...]]:
    where = "model.reinit_layers"
    if not isinstance(value, list) or not value:
        v.fail(where, "must be a list of 0-based block indices ([0, 1]) or a list of such lists")
    groups = [value] if all(isinstance(x, int) and not isinstance(x, bool) for x in value) else value
    n_layers = _known_layers(model)
    out: list[tuple[int, ...]] = [()]
    for i, group in enumerate(groups):
        at = where if groups is not value else f"{where}[{i}]"
        if not isinstance(group, list) or any(isinstance(b, bool) or not isinstance(b, int) for b in group):
            v.fail(at, f"must be a list of integer block indices, got {group!r} (regexes are not accepted)")
        for b in group:
            if b < 0:
                v.fail(at, f"block index {b} is negative; blocks are 0-based")
            if n_layers is not None and b >= n_layers:
                v.fail(at, f"block index {b} out of range: the model has {n_layers} blocks (0..{n_layers - 1})")
        if len(set(group)) < len(group):
            v.fail(at, f"a block is listed twice in {group}")
        t = tuple(sorted(group))
        if t not in out:
            out.append(t)
    return out


def parse_representations(value, v) -> dict:
    if value is True:
        value = {}
    if not isinstance(value, dict):
        v.fail("representations", "must be a mapping (see experiments/README.md) or true")
    unknown = set(value) - set(REPRESENTATION_DEFAULTS)
    if unknown:
        v.fail(f"representations.{sorted(unknown)[0]}",
               f"unknown field; known: {', '.join(sorted(REPRESENTATION_DEFAULTS))}")
    spec = {**REPRESENTATION_DEFAULTS, **value}
    if spec["languages"] is not None:
        spec["languages"] = v.languages("representations.languages", spec["languages"])
        from .tasks.udpos import pud_treebanks

        pud = set(pud_treebanks()["treebanks"])
        for i, lang in enumerate(spec["languages"]):
            if lang not in pud:
                v.fail(f"representations.languages[{i}]", f"{lang!r} has no PUD treebank; PUD languages: "
                                                           f"{', '.join(sorted(pud))}")
    if spec["sentences"] not in ("test", "all"):
        v.fail("representations.sentences", f"must be test or all, got {spec['sentences']!r}")
    for key in ("n_sentences", "batch_size", "max_length"):
        x = spec[key]
        if x is None and key == "n_sentences":
            continue
        if isinstance(x, bool) or not isinstance(x, int) or x < (2 if key == "n_sentences" else 1):
            v.fail(f"representations.{key}", f"must be a positive integer, got {x!r}")
    if spec["checkpoints"] not in ("all", "pretrained", "fine-tuned"):
        v.fail("representations.checkpoints", f"must be all, pretrained or fine-tuned, got {spec['checkpoints']!r}")
    if not isinstance(spec["tsne"], bool):
        v.fail("representations.tsne", "must be true or false")
    cka = spec["cka"] if spec["cka"] is not None else {}
    if not isinstance(cka, dict):
        v.fail("representations.cka", "must be a mapping")
    unknown = set(cka) - set(CKA_DEFAULTS)
    if unknown:
        v.fail(f"representations.cka.{sorted(unknown)[0]}", f"unknown field; known: {', '.join(sorted(CKA_DEFAULTS))}")
    cka = {**CKA_DEFAULTS, **cka}
    from ..errors import InputError
    from ..studies.cka.tables import parse_kernel

    kernels = cka["kernels"] if isinstance(cka["kernels"], list) else [cka["kernels"]]
    for i, k in enumerate(kernels):
        try:
            parse_kernel(k)
        except InputError as exc:
            v.fail(f"representations.cka.kernels[{i}]", str(exc))
    cka["kernels"] = kernels
    if cka["reference"] is not None:
        cka["reference"] = v.languages("representations.cka.reference", [cka["reference"]])[0]
    for key in ("n_boot", "n_batches", "seed"):
        if isinstance(cka[key], bool) or not isinstance(cka[key], int) or cka[key] < (0 if key != "n_batches" else 1):
            v.fail(f"representations.cka.{key}", f"must be a non-negative integer, got {cka[key]!r}")
    spec["cka"] = cka
    return spec


def parse_extensions(raw: dict, model: dict, v):
    """(model without ``reinit_layers``, {sources, source_sets, source_budget, reinit, representations})."""
    from ..studies.multisource.sets import check_budget, parse_sources

    ext = {"sources": None, "source_sets": [], "source_budget": None, "reinit": None, "representations": None}
    entries = raw.get("sources")
    if isinstance(entries, list) and any(not isinstance(e, str) or "[" in e for e in entries) or \
            (isinstance(entries, str) and "[" in entries):
        from ..languages import to_iso639_3

        def normalise(codes, where):
            out = []
            for i, code in enumerate(codes):
                try:
                    out.append(to_iso639_3(str(code)))
                except ValueError as exc:
                    v.fail(f"{where}[{i}]" if len(codes) > 1 else where, str(exc))
            return out

        sets = parse_sources(entries, normalise, v.fail)
        ext["source_sets"] = sets
        flat: list[str] = []
        for s in sets:
            for lang in s:
                if lang not in flat:
                    flat.append(lang)
        ext["sources"] = flat
    if "source_budget" in raw:
        sets = ext["source_sets"] or [(lang,) for lang in (ext["sources"] or [])]
        ext["source_budget"] = check_budget(raw["source_budget"], sets, v.fail)
    if isinstance(model, dict) and "reinit_layers" in model:
        model = dict(model)
        ext["reinit"] = parse_reinit(model.pop("reinit_layers"), model, v)
    if raw.get("representations") is not None:
        ext["representations"] = parse_representations(raw["representations"], v)
    return model, ext


def check_reinit_range(study) -> None:
    """Block indices against the model's number of blocks (reading the model config if needed)."""
    from ..errors import ConfigError

    n_layers = _known_layers(study.model)
    if n_layers is None:
        try:
            from transformers import AutoConfig

            cfg = AutoConfig.from_pretrained(study.model["pretrained"])
            n_layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "num_layers", None)
        except Exception as exc:  # noqa: BLE001 - any failure means the range cannot be checked
            raise ConfigError(f"{study.path}: field 'model.reinit_layers': cannot read the config of "
                              f"{study.model.get('pretrained')!r} to check the block indices: {exc}") from None
    for blocks in study.reinit:
        for b in blocks:
            if b >= n_layers:
                raise ConfigError(f"{study.path}: field 'model.reinit_layers': block index {b} out of range: "
                                  f"the model has {n_layers} blocks (0..{n_layers - 1})")
