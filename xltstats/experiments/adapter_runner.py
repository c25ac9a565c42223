"""Running the jobs of an adapter study (see :mod:`.adapter_study`); imported only when a job runs.

Checkpoints (atomic, in ``<run_dir>/checkpoints/<job id>/``): the base model (``base``), one adapter
folder in AdapterHub's layout per language adapter and task adapter (the task head beside it), and
for ``mlm`` jobs the updated encoder (removed when its rows are written unless
``keep_checkpoints``).  Rows are appended to the job's journal as each evaluation finishes, so a
killed job redoes only what is missing; a sweep's lambda is selected from the validation rows in
the journal, so a resumed sweep selects the same lambda.
"""
from __future__ import annotations

import json
import logging
import shutil
import zlib
from pathlib import Path

import torch

from ..errors import ConfigError
from . import adapters as A
from . import train as T
from ._adapter_jobs import AdapterJob, expand_adapter_study
from ._adapter_mlm import mask_tokens, mlm_blocks, mlm_lines, mlm_train  # noqa: F401
from ._job_resources import job_log, load_examples, run_locked, study_tokenizer
from .adapter_study import check_text_files
from .journal import Journal, journal_dir, read_journal
from .plan import row_key, run_id, sample_indices
from .tasks import get_task

log = logging.getLogger("xltstats.experiments")
TASK_ADAPTER = "task"


# --------------------------------------------------------------------------- bookkeeping

def checkpoint_dir(study, job_id: str) -> Path:
    return study.run_dir / "checkpoints" / job_id


def is_pending(study, job: AdapterJob, done: dict) -> bool:
    if job.kind in ("base", "lang_adapter", "task_adapter"):
        if not T.checkpoint_complete(checkpoint_dir(study, job.id)):
            return True
    return any(row_key(study, job, u) not in done for u in job.units)


def preflight(study, jobs) -> None:
    """Before any training: text folders, task data of every target, validation sizes."""
    check_text_files(study)
    a = study.adapter_study
    for spec in study.tasks:
        for lang in study.sources:
            if not load_examples(study, spec.name, lang, "train"):
                raise ConfigError(f"{study.path}: field 'sources': no train examples of task "
                                  f"{spec.name} for {lang}")
        if a.arithmetic:
            n_val = a.arithmetic["validation_examples"]
            for pair in a.arithmetic["pairs"]:
                lang = pair["target"] if a.arithmetic["select_on"] == "val_target" else study.sources[0]
                task = get_task(spec.name)
                if not task.has_split(spec.data, lang, "train"):
                    raise ConfigError(f"{study.path}: field 'adapter_study.arithmetic.pairs': {lang!r} "
                                      f"has no train split of task {spec.name} to draw validation "
                                      "examples from")
                n = len(load_examples(study, spec.name, lang, "train"))
                if n < n_val:
                    raise ConfigError(f"{study.path}: field 'adapter_study.arithmetic."
                                      f"validation_examples': {n_val} exceeds the {n} examples of "
                                      f"{lang} available for validation")


def run_adapter_job(study, job: AdapterJob, *, progress: bool = True,
                    wait: bool = False) -> tuple[str, int]:
    """Run the unfinished part of ``job``.

    Returns (outcome, rows written) as the runner's ``run_job_status``: ``done``, ``ran``,
    ``locked`` (another process holds the job; skipped) or ``elsewhere`` (waited for it)."""
    def work(journal) -> int:
        jobs = {j.id: j for j in expand_adapter_study(study)}
        for need in job.needs:
            if is_pending(study, jobs[need], _all_keys(study)):
                raise ConfigError(f"job {job.id} needs {need}, which has not finished; run the "
                                  f"study (or that job) first")
        with job_log(study, job):
            return _Run(study, job, journal, progress).run()

    return run_locked(study, job, wait=wait, pending=lambda keys: is_pending(study, job, keys), work=work)


def _all_keys(study) -> dict:
    from .journal import read_all

    return read_all(study.run_dir)


# --------------------------------------------------------------------------- models

def _quiet():
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def base_path(study) -> str:
    if "pretrained" in study.model:
        return study.model["pretrained"]
    return str(checkpoint_dir(study, "base-base"))


def load_mlm_model(study, device):
    from transformers import AutoModelForMaskedLM

    _quiet()
    return AutoModelForMaskedLM.from_pretrained(base_path(study)).to(device)


def load_task_model(study, task, device):
    _quiet()
    arch = T.architecture(study.model)
    if arch == "seq2seq":
        raise ConfigError(f"{study.path}: adapter studies need an encoder model with a task head")
    cls = T._auto_class(arch, task)
    model = cls.from_pretrained(base_path(study), num_labels=len(task.labels),
                                id2label=dict(enumerate(task.labels)),
                                label2id={n: i for i, n in enumerate(task.labels)})
    return model.to(device)


def _head(model) -> torch.nn.Module:
    head = getattr(model, "classifier", None)
    if head is None:
        raise ConfigError(f"{type(model).__name__} has no 'classifier' head")
    return head


def _prefix(model) -> str:
    return getattr(model, "base_model_prefix", "bert")


def load_task_adapter(study, model, task_job_id: str) -> None:
    folder = checkpoint_dir(study, task_job_id)
    A.load_adapter_state(model, A.read_adapter(folder, name=TASK_ADAPTER))
    head = A.read_head(folder)
    _head(model).load_state_dict(head)


def load_language_adapter(study, model, lang: str, name: str | None = None) -> A.AdapterState:
    state = A.read_adapter(checkpoint_dir(study, f"lang_adapter-{lang}"), name=name or lang)
    A.load_adapter_state(model, state)
    return state


def example_stats(task, gold_examples, predictions) -> list[list[int]]:
    """Per-example counts whose sums give the score: [correct, total] (accuracy) or
    [true positives, gold spans, predicted spans] (span F1); used by the paired bootstraps."""
    from .metrics import iob2_spans

    if task.kind == "classification":
        return [[int(e["label"] == p), 1] for e, p in zip(gold_examples, predictions)]
    if task.metric == "accuracy":
        return [[sum(a == b for a, b in zip(e["tags"], p)), len(e["tags"])]
                for e, p in zip(gold_examples, predictions)]
    names = lambda seq: [task.labels[t] if t >= 0 else "O" for t in seq]  # noqa: E731
    out = []
    for e, p in zip(gold_examples, predictions):
        gs, ps = iob2_spans(names(e["tags"])), iob2_spans(names(p))
        out.append([len(gs & ps), len(gs), len(ps)])
    return out


# --------------------------------------------------------------------------- the jobs

class _Run:
    def __init__(self, study, job: AdapterJob, journal: Journal, progress: bool):
        self.study, self.job, self.journal, self.progress = study, job, journal, progress
        self.a = study.adapter_study
        self.hp = study.hyperparameters
        self.device = T.pick_device()
        T.setup_torch(self.hp, self.device)
        self.tokenizer = study_tokenizer(study)
        self.written = 0

    def run(self) -> int:
        getattr(self, f"_{self.job.kind}")()
        return self.written

    # ---- helpers
    def _ckpt(self) -> Path:
        return checkpoint_dir(self.study, self.job.id)

    def _seed(self, *parts) -> int:
        return zlib.crc32("/".join(map(str, parts)).encode()) % (2 ** 31)

    def _texts(self, lang):
        lines = mlm_lines(self.study, lang)
        return lines, mlm_blocks(self.tokenizer, lines, int(self.a.mlm["max_length"]))

    def _task(self):
        return get_task(self.job.task), self.study.task(self.job.task)

    def _evaluate(self, model, lang: str, examples=None, split="test"):
        from .metrics import score

        task, spec = self._task()
        if examples is None:
            examples = load_examples(self.study, task.name, lang, split)
        arch = T.architecture(self.study.model)
        feats = T.cached_encode(self.study.cache_dir, task, spec.data, lang,
                                split if split == "test" else f"{split}-{len(examples)}", arch,
                                self.tokenizer, examples, self.hp)
        preds = T.predict(model, task, arch, self.tokenizer, examples, feats, self.hp, self.device,
                          self.progress)
        return score(task, examples, preds), example_stats(task, examples, preds), len(examples)

    def _row(self, unit, value, stats, n_eval, n_source, extra) -> dict:
        task, spec = self._task()
        row = {
            "model": self.study.model_name, "task": task.name, "source": self.job.source,
            "target": unit.target, "score": round(float(value), 6), "metric": spec.metric,
            "n_source_examples": n_source, "n_target_examples": 0, "seed": self.job.seed,
            "condition": unit.condition_text, "config_hash": self.study.config_hash,
            "run_id": run_id(self.study, self.job), "row_key": row_key(self.study, self.job, unit),
            "n_eval_examples": n_eval, "job_kind": self.job.kind,
            "example_stats": json.dumps(stats, separators=(",", ":")),
        }
        row.update(extra)
        return row

    def _baseline_scores(self, task_job_id: str) -> dict:
        path = journal_dir(self.study.run_dir) / f"{task_job_id}.jsonl"
        return {r["target"]: r["score"] for r in read_journal(path)}

    def _pending(self):
        return [u for u in self.job.units if row_key(self.study, self.job, u) not in self.journal.keys]

    # ---- base: the random model, optionally MLM-pretrained on the pooled text
    def _base(self):
        from transformers import AutoConfig, AutoModelForMaskedLM

        from .adapter_study import _base_languages

        _quiet()
        cfg = dict(self.study.model["config"])
        model_type = cfg.pop("model_type")
        cfg.setdefault("vocab_size", len(self.tokenizer))
        cfg.setdefault("pad_token_id", self.tokenizer.pad_token_id)
        torch.manual_seed(self.job.seed)
        model = AutoModelForMaskedLM.from_config(AutoConfig.for_model(model_type, **cfg)).to(self.device)
        stats = {}
        if self.a.base_mlm_steps:
            blocks = []
            for lang in _base_languages(self.a, self.study):
                blocks += self._texts(lang)[1]
            m = self.a.mlm
            stats = mlm_train(model, self.tokenizer, blocks, steps=self.a.base_mlm_steps,
                              learning_rate=max(m["learning_rate"], 1e-3), batch_size=int(m["batch_size"]),
                              seed=self.job.seed, probability=m["mask_probability"],
                              params=model.parameters(), device=self.device)
        T.save_checkpoint(model, self.tokenizer, self._ckpt())
        log.info("%s: base model saved (%s)", self.job.id, stats)

    # ---- language adapter on one language's text
    def _lang_adapter(self):
        lang = self.job.source
        spec = self.a.language_adapter
        model = load_mlm_model(self.study, self.device)
        config = A.AdapterConfig(**self.a.adapter_config("language"))
        A.add_adapter(model, lang, config, seed=int(spec["seed"]))
        A.set_active(model, lang)
        params = A.trainable_only(model, lang)
        lines, blocks = self._texts(lang)
        stats = mlm_train(model, self.tokenizer, blocks, steps=int(spec["steps"]),
                          learning_rate=spec["learning_rate"], batch_size=int(spec["batch_size"]),
                          seed=int(spec["seed"]), probability=self.a.mlm["mask_probability"],
                          params=params, device=self.device)
        state = A.adapter_state(model, lang)
        state.meta = {"language": lang, "lines": len(lines), "blocks": len(blocks), "training": stats}
        A.save_adapter(state, self._ckpt(), prefix=_prefix(model), model_type=model.config.model_type)
        log.info("%s: language adapter on %d lines: %s", self.job.id, len(lines), stats)

    # ---- task adapter on the pooled sources (baseline rows)
    def _train_examples(self):
        task, _ = self._task()
        pooled, counts = [], {}
        cap = self.hp.get("max_train_examples")
        for lang in self.study.sources:
            examples = load_examples(self.study, task.name, lang, "train")
            if cap and cap < len(examples):
                keep = sample_indices(len(examples), cap, self.job.seed, task.name, lang, "source")
                examples = [examples[i] for i in keep]
            counts[lang] = len(examples)
            pooled.append((lang, examples))
        return pooled, counts

    def _task_adapter(self):
        task, spec = self._task()
        model = load_task_model(self.study, task, self.device)
        ckpt = self._ckpt()
        pooled, counts = self._train_examples()
        stack_lang = self.study.sources[0] if self.a.task_adapter["stack_language_adapter"] else None
        if T.checkpoint_complete(ckpt):
            load_task_adapter(self.study, model, self.job.id)
            if stack_lang:
                load_language_adapter(self.study, model, stack_lang)
        else:
            torch.manual_seed(self.job.seed)  # the head's initialisation depends on the seed only
            for module in _head(model).modules():
                if isinstance(module, torch.nn.Linear):
                    module.reset_parameters()
            config = A.AdapterConfig(**self.a.adapter_config("task"))
            A.add_adapter(model, TASK_ADAPTER, config, seed=self.job.seed)
            if stack_lang:
                load_language_adapter(self.study, model, stack_lang)
                A.set_active(model, A.Stack(stack_lang, TASK_ADAPTER))
            else:
                A.set_active(model, TASK_ADAPTER)
            A.trainable_only(model, TASK_ADAPTER)
            for p in _head(model).parameters():
                p.requires_grad_(True)
            arch = T.architecture(self.study.model)
            feats = []
            for lang, examples in pooled:
                feats += T.cached_encode(self.study.cache_dir, task, spec.data, lang, "train-pooled",
                                         arch, self.tokenizer, examples, self.hp)
            stats = T.train(model, feats, self.hp, seed=self.job.seed, device=self.device,
                            pad_id=self.tokenizer.pad_token_id, desc=f"{self.job.id}",
                            progress=self.progress)
            state = A.adapter_state(model, TASK_ADAPTER)
            state.meta = {"task": task.name, "languages": counts, "training": stats,
                          "stacked_on": stack_lang}
            head = {k: v.detach().cpu() for k, v in _head(model).state_dict().items()}
            A.save_adapter(state, ckpt, prefix=_prefix(model), model_type=model.config.model_type,
                           head=head)
            log.info("%s: task adapter on %s: %s", self.job.id, counts, stats)
        A.set_active(model, TASK_ADAPTER)
        n_source = sum(counts.values())
        extra = {"method": "baseline", "task_seed": self.job.seed}
        if len(counts) > 1:
            extra["source_languages"] = json.dumps(dict(sorted(counts.items())))
        for unit in self._pending():
            value, stats, n_eval = self._evaluate(model, unit.target)
            self.journal.append(self._row(unit, value, stats, n_eval, n_source, extra))
            self.written += 1

    # ---- k steps of continued MLM of the whole model, then the unchanged task adapter
    def _mlm(self):
        task, _ = self._task()
        p = self.job.param
        k, run = int(p["mlm_steps"]), int(p["run"])
        lang = self.job.source
        ckpt = self._ckpt()
        m = self.a.mlm
        if T.checkpoint_complete(ckpt):
            encoder = torch.load(ckpt / "encoder.bin", map_location="cpu", weights_only=True)
        else:
            mlm = load_mlm_model(self.study, self.device)
            _, blocks = self._texts(lang)
            seed = self._seed(self.a.influence["seed"], lang, k, run)
            stats = mlm_train(mlm, self.tokenizer, blocks, steps=k, learning_rate=m["learning_rate"],
                              batch_size=int(m["batch_size"]), seed=seed,
                              probability=m["mask_probability"], params=mlm.parameters(),
                              device=self.device, weight_decay=m["weight_decay"])
            encoder = {n: t.detach().cpu() for n, t in mlm.base_model.state_dict().items()}
            _save_tensors(ckpt, {"encoder.bin": encoder}, {"training": stats, "seed": seed})
            log.info("%s: %d MLM steps on %s: %s", self.job.id, k, lang, stats)
        model = load_task_model(self.study, task, self.device)
        load_encoder(model, encoder)
        load_task_adapter(self.study, model, f"task_adapter-{task.name}-seed{self.job.seed}")
        A.set_active(model, TASK_ADAPTER)
        baseline = self._baseline_scores(f"task_adapter-{task.name}-seed{self.job.seed}")
        for unit in self._pending():
            value, stats, n_eval = self._evaluate(model, unit.target)
            base = baseline.get(unit.target)
            # seed = the run (neg_inf's 10 runs per k); the task adapter's seed is task_seed
            extra = {"seed": run, "method": "mlm", "mlm_steps": k, "run": run, "task_seed": self.job.seed,
                     "baseline_score": base,
                     "influence": None if base is None else round(value - base, 6)}
            self.journal.append(self._row(unit, value, stats, n_eval, k * int(m["batch_size"]), extra))
            self.written += 1
        if not self.study.keep_checkpoints:
            shutil.rmtree(ckpt, ignore_errors=True)

    # ---- language adapters composed with the task adapter
    def _compose(self):
        task, _ = self._task()
        p = self.job.param
        members = p["members"].split("+")
        compose = p["compose"]
        model = load_task_model(self.study, task, self.device)
        ta = f"task_adapter-{task.name}-seed{self.job.seed}"
        load_task_adapter(self.study, model, ta)
        states = {lang: load_language_adapter(self.study, model, lang) for lang in members}
        baseline = self._baseline_scores(ta)
        lines = {lang: int(_stored_meta(self.study, f"lang_adapter-{lang}").get("lines", 0))
                 for lang in members}
        for unit in self._pending():
            names = list(members)
            with_target = dict(unit.condition).get("with_target_adapter") == "true"
            if with_target:
                if unit.target not in states:
                    states[unit.target] = load_language_adapter(self.study, model, unit.target)
                names = [unit.target] + names
            block = self._block(model, compose, names, states)
            A.set_active(model, A.Stack(block, TASK_ADAPTER))
            value, stats, n_eval = self._evaluate(model, unit.target)
            base = baseline.get(unit.target)
            extra = {"method": "adapter", "compose": compose, "n_languages": len(members),
                     "task_seed": self.job.seed, "baseline_score": base,
                     "influence": None if base is None else round(value - base, 6),
                     "fusion_seed": int(p["fusion_seed"]) if compose == "fuse" else None,
                     "with_target_adapter": with_target}
            if len(members) > 1:
                extra["source_languages"] = json.dumps(dict(sorted(lines.items())))
            self.journal.append(self._row(unit, value, stats, n_eval, sum(lines.values()), extra))
            self.written += 1

    def _block(self, model, compose, names, states):
        if compose == "stack":
            if len(names) != 1:
                raise ConfigError(f"compose: stack takes one language adapter, got {names}")
            return names[0]
        if compose == "fuse":
            return A.Fuse(tuple(names), seed=int(self.job.param["fusion_seed"]))
        if compose == "outavg":
            return A.Average(tuple(names))
        merged_name = "avg_" + "_".join(names)
        if merged_name not in A.adapter_names(model):
            merged = A.merge_adapters([states[n] for n in names], [1.0 / len(names)] * len(names),
                                      name=merged_name)
            A.load_adapter_state(model, merged)
        return merged_name

    # ---- lambda sweep of one arithmetic pair, lambda chosen on validation rows
    def _sweep(self):
        task, _ = self._task()
        p = self.job.param
        a1, a2 = p["a1"], p["a2"]
        ar = self.a.arithmetic
        model = load_task_model(self.study, task, self.device)
        ta = f"task_adapter-{task.name}-seed{self.job.seed}"
        load_task_adapter(self.study, model, ta)
        s1 = A.read_adapter(checkpoint_dir(self.study, f"lang_adapter-{a1}"), name=a1)
        s2 = A.read_adapter(checkpoint_dir(self.study, f"lang_adapter-{a2}"), name=a2)
        n_source = sum(_stored_meta(self.study, ta).get("languages", {}).values())
        val_units = [u for u in self.job.units if u.split == "validation"]
        test_units = [u for u in self.job.units if u.split == "test"]
        val_lang = val_units[0].target
        pool = load_examples(self.study, task.name, val_lang, "train")
        keep = sample_indices(len(pool), ar["validation_examples"], self.job.seed, task.name, val_lang,
                              "validation")
        validation = [pool[i] for i in keep]
        lambdas = ar["lambdas"]

        def activate(lam):
            if "la" in A.adapter_names(model):
                A.remove_adapter(model, "la")
            A.load_adapter_state(model, A.merge_adapters([s1, s2], [lam, 1.0 - lam], name="la"))
            A.set_active(model, A.Stack("la", TASK_ADAPTER))

        common = {"adapter_a": a1, "adapter_b": a2, "scenario": p["scenario"],
                  "task_seed": self.job.seed, "method": "arithmetic", "la_method": "linear"}
        for lam, unit in zip(lambdas, val_units):
            if row_key(self.study, self.job, unit) in self.journal.keys:
                continue
            activate(lam)
            value, stats, n_eval = self._evaluate(model, val_lang, validation, split="validation")
            self.journal.append(self._row(unit, value, stats, n_eval, n_source,
                                          {**common, "lambda": lam, "split": "validation"}))
            self.written += 1
        rows = {r["row_key"]: r for r in read_journal(self.journal.path)}
        val_scores = [rows[row_key(self.study, self.job, u)]["score"] for u in val_units]
        # the best validation score; ties go to the smallest lambda (as the analysis selects)
        best = max(range(len(lambdas)), key=lambda i: (val_scores[i], -lambdas[i]))
        selected = lambdas[best]
        for lam, unit in zip(lambdas, test_units):
            if row_key(self.study, self.job, unit) in self.journal.keys:
                continue
            activate(lam)
            value, stats, n_eval = self._evaluate(model, unit.target)
            extra = {**common, "lambda": lam, "split": "test", "selected_on": p["select_on"],
                     "selected_lambda": selected, "is_selected": lam == selected}
            self.journal.append(self._row(unit, value, stats, n_eval, n_source, extra))
            self.written += 1


def _stored_meta(study, job_id) -> dict:
    """What the adapter job ``job_id`` recorded in its checkpoint (``save_adapter``'s meta)."""
    path = checkpoint_dir(study, job_id) / A.CONFIG_NAME
    return json.loads(path.read_text(encoding="utf-8")).get("xltstats", {})


def load_encoder(model, encoder: dict) -> None:
    """Put the encoder weights of an MLM model into a task model (the pooler, which MLM models
    lack, keeps the base model's weights)."""
    missing, unexpected = model.base_model.load_state_dict(encoder, strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise ConfigError(f"encoder weights do not fit the task model (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]})")


def _save_tensors(folder: Path, files: dict, meta: dict) -> None:
    def write(tmp: Path) -> None:
        for name, tensors in files.items():
            torch.save(tensors, tmp / name)
        (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True, default=str) + "\n")

    T.write_checkpoint(folder, write)

