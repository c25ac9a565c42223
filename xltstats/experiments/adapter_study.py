"""Adapter studies: the ``adapter_study:`` section of a study config, and its jobs.

Two published studies run through this section (see ``experiments/README.md``):

* **influence and interference** (Faisal & Anastasopoulos, ``ffaisal93/neg_inf``): a task adapter
  trained once on the pooled ``sources``; a transfer language L enters either by ``k`` steps of
  continued MLM of the whole model (``influence.mlm_steps``, ``influence.runs`` seeded runs), or by a
  language adapter trained on L's text composed with the task adapter (``compositions``:
  ``stack`` for single languages; ``fuse`` (untrained AdapterFusion, seeded), ``outavg`` (output
  average), ``paramavg`` (parameter average) for sets of 2 or 3).
* **language arithmetic** (Klimaszewski et al., ``mklimasz/language-arithmetic``): MAD-X language
  adapters (bottleneck + NICE) from one shared seed, a task adapter trained on the source language
  stacked on its language adapter, and for each ``arithmetic.pairs`` entry a sweep over lambda of
  ``lambda * A1 + (1 - lambda) * A2`` evaluated on validation and test data, lambda chosen on the
  validation data only (``select_on``; choosing on test is refused).

Job kinds (:mod:`._adapter_jobs` lists them; each keeps the runner's journal, row keys, locks and
atomic checkpoints):

``base``            MLM pre-training of a randomly initialised model on the pooled text (tiny
                    studies only: a random encoder has no language knowledge to probe)
``lang_adapter``    language adapter trained with MLM on one language's text (checkpoint only)
``task_adapter``    task adapter (+ head) on the pooled ``sources``; writes the baseline rows
``mlm``             k continued-MLM steps of the whole model on L's text (seeded run), then the
                    unchanged task adapter on the updated model, evaluated on every target
``compose``         language adapter(s) composed with the task adapter, evaluated on the targets
``sweep``           lambda sweep of one arithmetic pair (validation rows, then test rows)

Nothing here imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ._adapter_jobs import (AdapterJob, RowUnit, adapter_row_key, adapter_run_id,  # noqa: F401
                            expand_adapter_study)

COMPOSITIONS = ("stack", "fuse", "outavg", "paramavg")
SELECT_ON = ("val_target", "val_source")
TEXT_SOURCES = ("udhr", "pud", "dir", "wikipedia")
_SECTION_FIELDS = {"base", "text", "mlm", "language_adapter", "task_adapter", "transfer_languages",
                   "influence", "compositions", "arithmetic"}
_ADAPTER_FIELDS = {"reduction_factor", "non_linearity", "inv_adapter", "inv_adapter_reduction_factor",
                   "init_weights"}
DEFAULT_MLM = {"learning_rate": 5e-5, "batch_size": 8, "max_length": 128, "mask_probability": 0.15,
               "weight_decay": 0.0, "max_lines": 10000}
DEFAULT_LANGUAGE_ADAPTER = {"reduction_factor": 16, "non_linearity": "relu", "inv_adapter": None,
                            "inv_adapter_reduction_factor": 2, "init_weights": "bert",
                            "steps": 1000, "learning_rate": 1e-4, "batch_size": 8, "seed": 42}
DEFAULT_TASK_ADAPTER = {"reduction_factor": 16, "non_linearity": "gelu", "inv_adapter": None,
                        "inv_adapter_reduction_factor": 2, "init_weights": "bert",
                        "stack_language_adapter": False}
# ISO 639-3 -> Wikipedia language code where it is neither the ISO 639-1 code nor the 639-3 code.
WIKI_CODES = {"kmr": "ku", "zho": "zh", "cmn": "zh", "arb": "ar", "ekk": "et", "npi": "ne",
              "swh": "sw", "pes": "fa", "zsm": "ms", "ydd": "yi", "khk": "mn", "lvs": "lv"}


@dataclass(frozen=True)
class TextSpec:
    source: str  # udhr | pud | dir | wikipedia
    path: str | None = None  # dir: DIR/<code>.txt (neg_inf's mlm_data layout)
    max_lines: int = 10000


@dataclass
class AdapterStudy:
    text: TextSpec
    mlm: dict
    language_adapter: dict  # adapter fields + training (steps, learning_rate, batch_size, seed)
    task_adapter: dict
    transfer_languages: list[str]
    base_mlm_steps: int = 0
    base_seed: int = 0
    influence: dict | None = None  # {mlm_steps: [...], runs: n, seed: s}
    compositions: dict | None = None  # {set_sizes, compose, fusion_seed, include_target, targets_of_triples}
    arithmetic: dict | None = None  # {pairs: [...], lambdas, select_on, validation_examples}
    raw: dict = field(default_factory=dict, repr=False)

    def adapter_config(self, which: str) -> dict:
        spec = self.language_adapter if which == "language" else self.task_adapter
        return {k: spec[k] for k in sorted(_ADAPTER_FIELDS)}

    @property
    def hash_payload(self) -> dict:
        return {"text": self.text.__dict__, "mlm": self.mlm, "language_adapter": self.language_adapter,
                "task_adapter": self.task_adapter, "base_mlm_steps": self.base_mlm_steps,
                "base_seed": self.base_seed}

    def adapter_languages(self, study) -> list[str]:
        """Languages that need a language adapter, in a fixed order."""
        langs: list[str] = []
        if self.compositions:
            langs += self.transfer_languages
            if self.compositions.get("include_target"):
                langs += [t for t in study.targets if self.has_text(t)]
        if self.arithmetic:
            for pair in self.arithmetic["pairs"]:
                langs += list(pair["adapters"])
        if self.task_adapter.get("stack_language_adapter"):
            langs += list(study.sources)
        out = []
        for lang in langs:
            if lang not in out:
                out.append(lang)
        return out

    def has_text(self, lang: str) -> bool:
        return self.text.source != "udhr" or _udhr_has(lang)


def _udhr_has(lang: str) -> bool:
    from ..features.corpora import udhr_version_for

    try:
        return udhr_version_for(lang) is not None
    except Exception:  # noqa: BLE001 - no UDHR index reachable: no text
        return False


def _pud_has(lang: str) -> bool:
    from ..features.corpora import available_languages

    return lang in available_languages("pud")


# --------------------------------------------------------------------------- parsing

def parse_adapter_study(raw, study, v) -> AdapterStudy:
    """Validate the ``adapter_study`` section; ``v.fail(field, message)`` names file and field."""
    if not isinstance(raw, dict):
        v.fail("adapter_study", "must be a mapping")
    unknown = set(raw) - _SECTION_FIELDS
    if unknown:
        v.fail(f"adapter_study.{sorted(unknown)[0]}",
               f"unknown field; known: {', '.join(sorted(_SECTION_FIELDS))}")
    if not any(raw.get(k) for k in ("influence", "compositions", "arithmetic")):
        v.fail("adapter_study", "give at least one of influence, compositions, arithmetic")
    if study.few_shot != [0]:
        v.fail("few_shot", "adapter studies evaluate zero-shot only (few_shot: [0])")
    model_type = str(study.model.get("config", {}).get("model_type", ""))
    if model_type in ("t5", "mt5", "umt5", "bart", "mbart") or "t5" in str(study.model.get("pretrained", "")):
        v.fail("model", "adapter studies train a task head on an encoder (BERT, XLM-R); the "
                        "T5 feed-forward adapter is available in xltstats.experiments.adapters")

    text = _text(raw.get("text"), v)
    mlm = _numbers("adapter_study.mlm", raw.get("mlm"), DEFAULT_MLM, v)
    text = TextSpec(text.source, text.path, int(mlm.pop("max_lines")))
    la = _adapter("adapter_study.language_adapter", raw.get("language_adapter"),
                  DEFAULT_LANGUAGE_ADAPTER, v)
    ta = _adapter("adapter_study.task_adapter", raw.get("task_adapter"), DEFAULT_TASK_ADAPTER, v)
    transfer = v.languages("adapter_study.transfer_languages", raw["transfer_languages"]) \
        if raw.get("transfer_languages") else []

    base = raw.get("base") or {}
    if not isinstance(base, dict) or set(base) - {"mlm_steps", "seed"}:
        v.fail("adapter_study.base", "must be a mapping with mlm_steps (and seed)")
    base_steps = v.integer("adapter_study.base.mlm_steps", base.get("mlm_steps", 0), 0)
    if base_steps and "pretrained" in study.model:
        v.fail("adapter_study.base.mlm_steps", "only for randomly initialised models (model.config)")
    base_seed = v.integer("adapter_study.base.seed", base.get("seed", 0), 0)

    out = AdapterStudy(text=text, mlm=mlm, language_adapter=la, task_adapter=ta,
                       transfer_languages=transfer, base_mlm_steps=base_steps, base_seed=base_seed,
                       raw=raw)
    if raw.get("influence"):
        out.influence = _influence(raw["influence"], v)
        if not transfer:
            v.fail("adapter_study.transfer_languages", "influence needs transfer languages")
    if raw.get("compositions"):
        out.compositions = _compositions(raw["compositions"], v)
        if not transfer:
            v.fail("adapter_study.transfer_languages", "compositions need transfer languages")
    if raw.get("arithmetic"):
        out.arithmetic = _arithmetic(raw["arithmetic"], study, v)
        if len(study.sources) != 1:
            v.fail("sources", "language arithmetic trains its task adapter on one source language")
        if not out.language_adapter.get("seed") and out.language_adapter.get("seed") != 0:
            v.fail("adapter_study.language_adapter.seed", "arithmetic needs one shared seed")
    if out.task_adapter["stack_language_adapter"] and len(study.sources) != 1:
        v.fail("adapter_study.task_adapter.stack_language_adapter",
               "stacking on a language adapter needs one source language")
    _check_text(out, study, v)
    return out


def _text(raw, v) -> TextSpec:
    if raw is None:
        v.fail("adapter_study.text", "missing: where the MLM text comes from "
                                     f"({', '.join(TEXT_SOURCES)})")
    if isinstance(raw, str):
        raw = {"source": raw}
    if not isinstance(raw, dict) or set(raw) - {"source", "path"}:
        v.fail("adapter_study.text", "must be udhr | pud | wikipedia or {source: dir, path: DIR}")
    source = raw.get("source")
    if source not in TEXT_SOURCES:
        v.fail("adapter_study.text.source", f"unknown text source {source!r}; known: "
                                            f"{', '.join(TEXT_SOURCES)}")
    path = None
    if source == "dir":
        if not raw.get("path"):
            v.fail("adapter_study.text.path", "missing: a folder of <language>.txt files")
        path = str(v.resolve(raw["path"]))
    return TextSpec(source, path)


def _numbers(name, given, defaults, v) -> dict:
    """The numbers of a section: integer defaults take whole numbers >= 1 (a seed >= 0)."""
    integers = {k: 0 if k == "seed" else 1 for k, d in defaults.items()
                if isinstance(d, int) and not isinstance(d, bool)}
    return v.numbers(name, given, defaults, integers=integers)


def _adapter(name, given, defaults, v) -> dict:
    given = given or {}
    if not isinstance(given, dict):
        v.fail(name, "must be a mapping")
    text_fields = {"non_linearity", "inv_adapter", "init_weights"}
    numbers = {k: d for k, d in defaults.items() if k not in text_fields}
    out = _numbers(name, {k: x for k, x in given.items() if k not in text_fields}, numbers, v)
    for key in text_fields:
        out[key] = given.get(key, defaults[key])
    if out["inv_adapter"] in ("none", "None", False):
        out["inv_adapter"] = None
    problem = check_adapter_fields({k: out[k] for k in _ADAPTER_FIELDS})
    if problem:
        v.fail(f"{name}.{problem[0]}", problem[1])
    return out


#: Activation names the adapters know (``adapters.ACTIVATIONS``; kept here so that configs are
#: checked without importing torch).
ACTIVATION_NAMES = ("relu", "gelu", "gelu_new", "gelu_orig", "swish", "silu", "tanh", "leakyrelu")


def check_adapter_fields(fields: dict):
    """(field, message) of the first bad adapter field, or None."""
    if fields["non_linearity"] not in ACTIVATION_NAMES:
        return "non_linearity", (f"unknown activation {fields['non_linearity']!r}; known: "
                                 f"{', '.join(ACTIVATION_NAMES)}")
    if fields["inv_adapter"] not in (None, "nice"):
        return "inv_adapter", f"unknown invertible adapter {fields['inv_adapter']!r}; known: nice, none"
    if fields["init_weights"] not in ("bert", "mam_adapter"):
        return "init_weights", f"unknown {fields['init_weights']!r}; known: bert, mam_adapter"
    for key in ("reduction_factor", "inv_adapter_reduction_factor"):
        if not fields[key] or fields[key] <= 0:
            return key, f"must be a positive number, got {fields[key]!r}"
    return None


def _influence(raw, v) -> dict:
    if not isinstance(raw, dict) or set(raw) - {"mlm_steps", "runs", "seed"}:
        v.fail("adapter_study.influence", "must be a mapping with mlm_steps, runs (and seed)")
    steps = v.int_list("adapter_study.influence.mlm_steps", raw.get("mlm_steps"), 1)
    runs = v.integer("adapter_study.influence.runs", raw.get("runs", 1), 1)
    seed = v.integer("adapter_study.influence.seed", raw.get("seed", 1), 0)
    return {"mlm_steps": steps, "runs": runs, "seed": seed}


def _compositions(raw, v) -> dict:
    known = {"set_sizes", "compose", "fusion_seed", "include_target", "triples_members_only", "weights"}
    if not isinstance(raw, dict) or set(raw) - known:
        extra = sorted(set(raw) - known) if isinstance(raw, dict) else []
        v.fail(f"adapter_study.compositions{'.' + extra[0] if extra else ''}",
               f"unknown field; known: {', '.join(sorted(known))}")
    sizes = v.int_list("adapter_study.compositions.set_sizes", raw.get("set_sizes", [1]), 1)
    if max(sizes) > 3:
        v.fail("adapter_study.compositions.set_sizes", "sets of 1, 2 or 3 languages")
    compose = raw.get("compose", ["stack"])
    if isinstance(compose, str):
        compose = [compose]
    if not isinstance(compose, list) or not compose:
        v.fail("adapter_study.compositions.compose", f"must be a list of {', '.join(COMPOSITIONS)}")
    for i, name in enumerate(compose):
        if name not in COMPOSITIONS:
            v.fail(f"adapter_study.compositions.compose[{i}]",
                   f"unknown composition {name!r}; known: {', '.join(COMPOSITIONS)}")
    if len(set(compose)) != len(compose):
        v.fail("adapter_study.compositions.compose", "a composition is listed twice (conflicting "
                                                     "conditions: the rows would share a key)")
    include = raw.get("include_target", False)
    if not isinstance(include, bool):
        v.fail("adapter_study.compositions.include_target", "must be true or false")
    members = raw.get("triples_members_only", True)
    if not isinstance(members, bool):
        v.fail("adapter_study.compositions.triples_members_only", "must be true or false")
    return {"set_sizes": sizes, "compose": list(compose),
            "fusion_seed": v.integer("adapter_study.compositions.fusion_seed",
                                raw.get("fusion_seed", 0), 0),
            "include_target": include, "triples_members_only": members}


def _arithmetic(raw, study, v) -> dict:
    known = {"pairs", "lambdas", "select_on", "validation_examples"}
    if not isinstance(raw, dict) or set(raw) - known:
        extra = sorted(set(raw) - known) if isinstance(raw, dict) else []
        v.fail(f"adapter_study.arithmetic{'.' + extra[0] if extra else ''}",
               f"unknown field; known: {', '.join(sorted(known))}")
    select = raw.get("select_on", "val_target")
    if select in ("test", "test_target", "test_source"):
        v.fail("adapter_study.arithmetic.select_on",
               "lambda must be chosen on validation data, never on the test data it is scored on; "
               f"use one of {', '.join(SELECT_ON)}")
    if select not in SELECT_ON:
        v.fail("adapter_study.arithmetic.select_on", f"unknown {select!r}; use one of {', '.join(SELECT_ON)}")
    lambdas = raw.get("lambdas", [round(i / 10, 1) for i in range(11)])
    if not isinstance(lambdas, list) or len(lambdas) < 2:
        v.fail("adapter_study.arithmetic.lambdas", "must be a list of at least two numbers")
    clean = []
    for i, lam in enumerate(lambdas):
        if isinstance(lam, bool) or not isinstance(lam, (int, float)):
            v.fail(f"adapter_study.arithmetic.lambdas[{i}]", f"must be a number, got {lam!r}")
        if round(float(lam), 6) in clean:
            v.fail(f"adapter_study.arithmetic.lambdas[{i}]",
                   f"lambda {lam} listed twice (conflicting conditions: the rows would share a key)")
        clean.append(round(float(lam), 6))
    n_val = v.integer("adapter_study.arithmetic.validation_examples", raw.get("validation_examples", 100), 1)
    pairs_raw = raw.get("pairs")
    if not isinstance(pairs_raw, list) or not pairs_raw:
        v.fail("adapter_study.arithmetic.pairs", "must be a list of {target, adapters: [a1, a2], scenario}")
    pairs, seen = [], set()
    for i, item in enumerate(pairs_raw):
        where = f"adapter_study.arithmetic.pairs[{i}]"
        if not isinstance(item, dict) or set(item) - {"target", "adapters", "scenario"}:
            v.fail(where, "must be a mapping {target, adapters: [a1, a2], scenario}")
        target = v.languages(f"{where}.target", item.get("target"))
        if len(target) != 1:
            v.fail(f"{where}.target", "one target language")
        target = target[0]
        adapters = item.get("adapters")
        if not isinstance(adapters, list) or len(adapters) != 2:
            v.fail(f"{where}.adapters", "must be two language codes [a1, a2] (lambda * a1 + (1 - lambda) * a2)")
        adapters = [v.languages(f"{where}.adapters[{j}]", a)[0] for j, a in enumerate(adapters)]
        if adapters[0] == adapters[1]:
            v.fail(f"{where}.adapters", "the two adapters must differ")
        scenario = item.get("scenario", "zero_shot")
        if scenario not in ("zero_shot", "enhance"):
            v.fail(f"{where}.scenario", f"unknown scenario {scenario!r}; use zero_shot or enhance")
        if scenario == "zero_shot" and target in adapters:
            v.fail(f"{where}.scenario", f"zero_shot: the target {target!r} has no adapter of its own; "
                                        "use scenario: enhance to combine the target's adapter")
        if scenario == "enhance" and target not in adapters:
            v.fail(f"{where}.scenario", f"enhance: one of the adapters must be the target's ({target!r})")
        if target not in study.targets:
            v.fail(f"{where}.target", f"{target!r} is not one of the study's targets")
        key = (target, tuple(adapters))
        if key in seen:
            v.fail(where, "pair listed twice (conflicting conditions)")
        seen.add(key)
        pairs.append({"target": target, "adapters": tuple(adapters), "scenario": scenario})
    return {"pairs": pairs, "lambdas": clean, "select_on": select, "validation_examples": n_val}


def wiki_code(lang: str) -> str:
    if lang in WIKI_CODES:
        return WIKI_CODES[lang]
    try:
        import langcodes

        return langcodes.Language.get(lang).language or lang
    except Exception:  # noqa: BLE001
        return lang


def _check_text(a: AdapterStudy, study, v) -> None:
    """Every language whose text is used (transfer languages, adapter languages, the pooled text of
    a random base) has text in the chosen source (folders are checked when the study runs)."""
    needs = [("adapter_study.transfer_languages", lang) for lang in a.transfer_languages]
    needs += [("adapter_study.arithmetic.pairs", lang) for lang in a.adapter_languages(study)
              if lang not in a.transfer_languages]
    if a.base_mlm_steps:
        needs += [("adapter_study.base", lang) for lang in _base_languages(a, study)]
    for fieldname, lang in needs:
        if a.text.source == "udhr" and not _udhr_has(lang):
            v.fail(fieldname, f"language {lang!r} has no text in the UDHR corpus (text.source: udhr)")
        if a.text.source == "pud" and not _pud_has(lang):
            v.fail(fieldname, f"language {lang!r} has no PUD treebank (text.source: pud)")


def _base_languages(a: AdapterStudy, study) -> list[str]:
    langs = list(study.sources) + list(a.transfer_languages) + list(a.adapter_languages(study))
    langs += [t for t in study.targets]
    out = []
    for lang in langs:
        if lang not in out and a.has_text(lang) and (a.text.source != "pud" or _pud_has(lang)):
            out.append(lang)
    return out


def check_text_files(study) -> None:
    """Folder text sources: every needed ``<lang>.txt`` exists and is not empty (before training)."""
    a = study.adapter_study
    if a.text.source != "dir":
        return
    folder = Path(a.text.path)
    langs = list(a.transfer_languages) + [x for x in a.adapter_languages(study)
                                          if x not in a.transfer_languages]
    for lang in langs:
        path = folder / f"{lang}.txt"
        if not path.is_file() or not path.read_text(encoding="utf-8", errors="replace").strip():
            raise ConfigError(f"{study.path}: field 'adapter_study.text.path': language {lang!r} "
                              f"has no text ({path} missing or empty)")
