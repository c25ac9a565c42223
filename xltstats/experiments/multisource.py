"""Multi-source training data for the runner: the fixed-budget split and nested samples.

A job whose source is a set of languages trains on the union of a sample of each language's
training set.  With ``source_budget: N`` each of the k languages gets its share of N
(:func:`xltstats.studies.multisource.split_budget`: ``N // k``, remainders to the first languages in
sorted order).  Samples are the first n of a permutation seeded by (seed, task, language,
``"source"``), the key single-source jobs use for ``max_train_examples``, so:

* a language's 333 examples in ``{eng, spa, deu}`` are among its 500 in ``{eng, spa}`` and its 1000
  when it is the only source (nested across budgets and sets, for every seed);
* a single-source job with ``source_budget: N`` trains on exactly the examples
  ``max_train_examples: N`` would give it.

Without ``source_budget``, ``hyperparameters.max_train_examples`` (if set) is the total budget split
the same way, and without either every language contributes its whole training set.
"""
from __future__ import annotations

import json

from ..errors import ConfigError
from ..studies.multisource.sets import split_budget


def budget_of(study) -> int | None:
    return study.source_budget if study.source_budget is not None else study.hyperparameters.get("max_train_examples")


def planned_counts(study, job, sizes: dict[str, int] | None = None) -> dict[str, int] | None:
    """Examples per source language of ``job`` (None: every language's whole training set)."""
    langs = job.source_set or (job.source,)
    total = budget_of(study)
    if total is None:
        return None if sizes is None else {lang: sizes[lang] for lang in langs}
    counts = split_budget(int(total), langs)
    if sizes is not None:
        for lang, n in counts.items():
            if n > sizes[lang]:
                if len(langs) == 1 and study.source_budget is None:
                    counts[lang] = sizes[lang]  # max_train_examples is a cap for one source, as before
                    continue
                raise ConfigError(f"{study.path}: field 'source_budget': {lang} needs {n} training examples "
                                  f"of task {job.task} for {'+'.join(langs)} but has {sizes[lang]}")
    return counts


def source_examples(study, job, load) -> tuple[list[dict], dict[str, int]]:
    """The training examples of ``job`` and the count per language; ``load(lang)`` gives a language's
    training set."""
    from .plan import sample_indices

    langs = job.source_set or (job.source,)
    data = {lang: load(lang) for lang in langs}
    counts = planned_counts(study, job, {lang: len(v) for lang, v in data.items()})
    out: list[dict] = []
    used = {}
    for lang in langs:
        examples = data[lang]
        n = len(examples) if counts is None else counts[lang]
        if n < len(examples):
            keep = sample_indices(len(examples), n, job.seed, job.task, lang, "source")
            examples = [examples[i] for i in keep]
        out.extend(examples)
        used[lang] = len(examples)
    return out, used


def row_columns(study, job, counts: dict[str, int]) -> dict:
    """Extra results columns of a row of a study with source sets (single sources included, as
    one-language sets, so that every row says what it was trained on)."""
    if not job.source_set and not study.source_sets:
        return {}
    return {"source_languages": json.dumps(dict(sorted(counts.items()))), "set_size": len(job.languages)}
