"""The jobs of an adapter study (:mod:`.adapter_study`): their rows, ids and row keys.

:func:`expand_adapter_study` lists the jobs in a fixed order, training stages first (``base``,
``lang_adapter``, ``task_adapter``, then ``mlm``, ``compose`` and ``sweep`` jobs); each job names
the rows it writes (:class:`RowUnit`) and the jobs whose checkpoints it reads.  Nothing here
imports torch.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass

from ..results import format_condition


@dataclass(frozen=True)
class RowUnit:
    """One results row: a target, the condition (mapping) and the results columns it sets."""

    target: str
    condition: tuple  # sorted (key, value) pairs
    split: str = "test"

    @property
    def condition_text(self) -> str:
        return format_condition(dict(self.condition))

    @property
    def n_target(self) -> int:
        return 0


@dataclass(frozen=True)
class AdapterJob:
    kind: str  # base | lang_adapter | task_adapter | mlm | compose | sweep
    name: str
    task: str | None = None
    source: str = "mul"
    seed: int = 0
    params: tuple = ()  # sorted (key, value) pairs
    units: tuple[RowUnit, ...] = ()
    needs: tuple[str, ...] = ()  # ids of jobs whose checkpoints this one reads

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.name}"

    @property
    def few_shot(self) -> tuple:
        return ()

    @property
    def zero_shot(self) -> tuple:
        return self.units

    @property
    def param(self) -> dict:
        return dict(self.params)

    @property
    def stage(self) -> int:
        return {"base": 0, "lang_adapter": 1, "task_adapter": 2}.get(self.kind, 3)


def _cond(**pairs) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in pairs.items()))


def _fmt(x: float) -> str:
    return format(float(x), ".6g")


def expand_adapter_study(study) -> list[AdapterJob]:
    """The jobs of an adapter study in a fixed order, training stages first."""
    a = study.adapter_study
    jobs: list[AdapterJob] = []
    base_needs: tuple[str, ...] = ()
    if "config" in study.model:  # a random model: its initial (or MLM-pretrained) weights, once
        jobs.append(AdapterJob("base", "base", seed=a.base_seed))
        base_needs = ("base-base",)
    la_seed = a.language_adapter["seed"]
    for lang in a.adapter_languages(study):
        jobs.append(AdapterJob("lang_adapter", lang, source=lang, seed=la_seed, needs=base_needs))
    stack = a.task_adapter["stack_language_adapter"]
    for spec in study.tasks:
        targets = list(study.targets)
        for seed in study.seeds:
            ta_name = f"{spec.name}-seed{seed}"
            source = study.sources[0] if len(study.sources) == 1 else "mul"
            needs = base_needs + ((f"lang_adapter-{study.sources[0]}",) if stack else ())
            units = ()
            if a.influence or a.compositions:
                units = tuple(RowUnit(t, _cond(method="baseline")) for t in targets)
            ta = AdapterJob("task_adapter", ta_name, spec.name, source, seed, units=units, needs=needs)
            jobs.append(ta)
            if a.influence:
                inf = a.influence
                for lang in a.transfer_languages:
                    for k in inf["mlm_steps"]:
                        for run in range(1, inf["runs"] + 1):
                            cond = _cond(method="mlm", mlm_steps=k)
                            jobs.append(AdapterJob(
                                "mlm", f"{spec.name}-{lang}-k{k}-run{run}-seed{seed}", spec.name,
                                lang, seed, _cond(mlm_steps=k, run=run),
                                tuple(RowUnit(t, cond) for t in targets), base_needs + (ta.id,)))
            if a.compositions:
                jobs += _composition_jobs(study, spec.name, seed, ta, base_needs)
            if a.arithmetic:
                jobs += _sweep_jobs(study, spec.name, seed, ta, source)
    return jobs


def _composition_jobs(study, task, seed, ta, base_needs) -> list[AdapterJob]:
    a = study.adapter_study
    c = a.compositions
    jobs = []
    for size in c["set_sizes"]:
        for members in itertools.combinations(a.transfer_languages, size):
            kinds = ["stack"] if size == 1 else [k for k in c["compose"] if k != "stack"]
            if size == 1 and "stack" not in c["compose"]:
                kinds = []
            for compose in kinds:
                targets = list(study.targets)
                if size == 3 and c["triples_members_only"]:
                    targets = [t for t in members if t in study.targets]
                units = []
                for t in targets:
                    if c["include_target"]:
                        if t in members or not a.has_text(t):
                            continue
                        cond = _cond(method="adapter", compose=compose, with_target_adapter="true")
                    else:
                        cond = _cond(method="adapter", compose=compose)
                    units.append(RowUnit(t, cond))
                if not units:
                    continue
                needs = base_needs + (ta.id,) + tuple(f"lang_adapter-{m}" for m in members)
                if c["include_target"]:
                    needs += tuple(f"lang_adapter-{u.target}" for u in units)
                source = members[0] if size == 1 else "mul"
                name = f"{task}-{'_'.join(members)}-{compose}-seed{seed}"
                params = _cond(members="+".join(members), compose=compose,
                               fusion_seed=c["fusion_seed"])
                jobs.append(AdapterJob("compose", name, task, source, seed, params, tuple(units),
                                       tuple(dict.fromkeys(needs))))
    return jobs


def _sweep_jobs(study, task, seed, ta, source) -> list[AdapterJob]:
    ar = study.adapter_study.arithmetic
    jobs = []
    for pair in ar["pairs"]:
        a1, a2 = pair["adapters"]
        units = []
        for split in ("validation", "test"):
            # validation rows are scored on the data lambda is chosen on: the target's own
            # validation split, or the source language's (select_on: val_source)
            lang = pair["target"] if split == "test" or ar["select_on"] == "val_target" else source
            for lam in ar["lambdas"]:
                la = f"{a1}:{_fmt(lam)}+{a2}:{_fmt(1 - lam)}"
                units.append(RowUnit(lang, _cond(la=la, split=split), split))
        name = f"{task}-{pair['target']}-{a1}_{a2}-seed{seed}"
        needs = (ta.id, f"lang_adapter-{a1}", f"lang_adapter-{a2}")
        params = _cond(a1=a1, a2=a2, scenario=pair["scenario"], select_on=ar["select_on"])
        jobs.append(AdapterJob("sweep", name, task, source, seed, params, tuple(units), needs))
    return jobs


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def adapter_run_id(study, job: AdapterJob) -> str:
    spec_data = study.task(job.task).data if job.task else None
    return _digest([study.config_hash, job.kind, job.name, job.task, spec_data, job.source, job.seed,
                    job.params])


def adapter_row_key(study, job: AdapterJob, unit: RowUnit) -> str:
    return _digest([adapter_run_id(study, job), unit.target, unit.condition, unit.split])
