"""The representation-dump job: mean-pooled hidden states of every layer for PUD parallel sentences.

For the pretrained model (for a model built from a config: its random initialisation with the
study's first seed) and for every fine-tuned source checkpoint of the study, each PUD language's
sentences (the raw ``# text`` lines, the 200 held-out ones by default, which no fine-tuning run
saw in any language) are encoded in length-sorted batches; each layer's token states are averaged
over the real tokens, special tokens ([CLS], [SEP], <s>, </s>) and padding excluded.  Arrays go to
``<run_dir>/representations/`` in the format of :mod:`xltstats.studies.cka.dumps` (layer 0 =
embeddings), one entry per (checkpoint, language), each written atomically, so a killed dump
resumes at the first missing entry.  Then ``cka.csv``, ``mingling.csv`` and ``tsne.csv`` are
written beside them.
"""
from __future__ import annotations

import logging
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ConfigError

log = logging.getLogger("xltstats.experiments")
POOLING = "mean over real tokens, special tokens and padding excluded"


@lru_cache(maxsize=None)
def pud_texts(lang: str) -> tuple[str, ...]:
    """The 1000 sentences of a PUD treebank in file order (``# text``; tokens joined if absent)."""
    import conllu

    from ..datasets.fetch import fetch
    from .tasks.udpos import pud_remote

    path = fetch(pud_remote(lang))
    out = []
    with open(path, encoding="utf-8") as fh:
        for sentence in conllu.parse_incr(fh):
            text = sentence.metadata.get("text")
            out.append(text if text else " ".join(t["form"] for t in sentence if isinstance(t["id"], int)))
    return tuple(out)


def sentence_indices(spec: dict, n_total: int = 1000) -> list[int]:
    idx = [i for i in range(n_total) if spec["sentences"] == "all" or i % 5 == 4]
    return idx[:spec["n_sentences"]] if spec["n_sentences"] else idx


def encode(model, tokenizer, texts, *, batch_size: int, max_length: int, device) -> np.ndarray:
    """(layers + 1, n, hidden) float32 mean-pooled hidden states of ``texts``."""
    import torch

    encoder = model.get_encoder() if getattr(model.config, "is_encoder_decoder", False) else model
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = None
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt", return_special_tokens_mask=True)
            special = batch.pop("special_tokens_mask")
            batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            states = encoder(**batch, output_hidden_states=True).hidden_states
            keep = (batch["attention_mask"].bool() & ~special.to(device).bool()).float()
            counts = keep.sum(1, keepdim=True).clamp(min=1.0)
            pooled = torch.stack([(h.float() * keep[..., None]).sum(1) / counts for h in states])
            if out is None:
                out = np.zeros((pooled.shape[0], len(texts), pooled.shape[2]), dtype=np.float32)
            out[:, idx, :] = pooled.cpu().numpy()
    return out


def _checkpoints(study, jobs):
    from .plan import expand
    from .reinit import condition_text

    spec = study.representations
    out = []
    if spec["checkpoints"] in ("all", "pretrained"):
        out.append(("pretrained", None, {"kind": "pretrained"}))
    if spec["checkpoints"] in ("all", "fine-tuned"):
        for job in jobs if jobs is not None else expand(study):
            ckpt = study.run_dir / "checkpoints" / job.id
            if (ckpt / "COMPLETE").is_file():
                info = {"kind": "fine-tuned", "job": job.id, "task": job.task, "source": job.source,
                        "source_set": "+".join(job.languages), "set_size": len(job.languages),
                        "seed": job.seed}
                if job.reinit is not None:
                    info["condition"] = condition_text(job.reinit)
                out.append((job.id, ckpt, info))
    return out


def dump_representations(study, jobs=None, *, progress: bool = False) -> Path | None:
    """Dump what is missing, then (re)write the CKA, mingling and t-SNE tables."""
    from ..studies.cka.dumps import done_entries, write_entry
    from . import train as T
    from ._job_resources import _try_lock_path, study_tokenizer
    from .tasks import get_task

    spec = study.representations
    if spec is None:
        return None
    folder = study.run_dir / "representations"
    languages = spec["languages"] or sorted(set(study.targets) | set(study.sources))
    from .tasks.udpos import pud_treebanks

    pud = set(pud_treebanks()["treebanks"])
    lacking = [lang for lang in languages if lang not in pud]
    if lacking:
        raise ConfigError(f"{study.path}: field 'representations.languages': {lacking[0]!r} has no PUD treebank "
                          "(list the languages explicitly)")
    lock = _try_lock_path(study.run_dir / "locks" / "representations.lock")
    if lock is None:
        log.warning("representations: another process is dumping; skipped")
        return folder
    try:
        idx = sentence_indices(spec)
        texts = {lang: [pud_texts(lang)[i] for i in idx] for lang in languages}
        done = done_entries(folder)
        device = T.pick_device()
        T.setup_torch(study.hyperparameters, device)
        tokenizer = study_tokenizer(study)
        task = get_task(study.tasks[0].name)
        arch = T.architecture(study.model)
        meta = {"model": study.model_name, "pooling": POOLING, "sentences": f"PUD {spec['sentences']} split",
                "sentence_rule": "PUD sentence i (0-based) is test when i % 5 == 4", "study": study.name,
                "tokenizer": T.tokenizer_fingerprint(tokenizer), "max_length": spec["max_length"]}
        for name, path, info in _checkpoints(study, jobs):
            todo = [lang for lang in languages if (name, lang) not in done]
            if not todo:
                continue
            t0 = time.perf_counter()
            if path is None:
                model = T.build_model(study.model, task, arch, tokenizer, study.seeds[0])
            else:
                model = T.load_checkpoint(path, get_task(info["task"]), arch)
            model = model.to(device)
            for lang in todo:
                hidden = encode(model, tokenizer, texts[lang], batch_size=spec["batch_size"],
                                max_length=spec["max_length"], device=device)
                write_entry(folder, checkpoint=name, language=lang, hidden=hidden, sentence_index=idx,
                            meta=meta, info=info)
            log.info("representations: %s, %d languages in %.1fs", name, len(todo), time.perf_counter() - t0)
            del model
        analyse(study, folder)
    finally:
        lock.close()
    return folder


def analyse(study, folder: Path) -> None:
    """cka.csv, mingling.csv and tsne.csv from the dump folder (atomic, deterministic)."""
    import pandas as pd

    from ..models.tables import write_table
    from ..studies.cka import cka_table, mingling_table, read_dump, tsne_coordinates

    spec = study.representations
    cka = spec["cka"]
    dump = read_dump(folder)
    reference = cka["reference"] if cka["reference"] in dump.languages(dump.checkpoints[0]) else None
    table = cka_table(dump, kernels=cka["kernels"], reference=reference, n_boot=cka["n_boot"],
                      n_batches=cka["n_batches"], seed=cka["seed"], task=study.tasks[0].name)
    info = {e["checkpoint"]: e for e in dump.manifest["entries"]}
    for column in ("source_set", "set_size", "condition"):
        table[column] = table["checkpoint"].map(lambda c, col=column: info[c].get(col, ""))
    write_table(table, folder, "cka", formats=("csv",))
    ming = mingling_table(dump, kernel=cka["kernels"][0])
    for column in ("source_set", "set_size", "condition"):
        ming[column] = ming["checkpoint"].map(lambda c, col=column: info[c].get(col, ""))
    write_table(ming, folder, "mingling", formats=("csv",))
    per = mingling_table(dump, kernel=cka["kernels"][0], by_language=True)
    per["set_size"] = per["checkpoint"].map(lambda c: info[c].get("set_size", ""))
    per["in_source_set"] = [lang in str(info[c].get("source_set", "")).split("+")
                            for c, lang in zip(per["checkpoint"], per["language"])]
    write_table(per, folder, "mingling_languages", formats=("csv",))
    if spec["tsne"]:
        frames = []
        n_layers = info[dump.checkpoints[0]]["n_layers"]
        layer = max(1, n_layers // 2)
        for ckpt in _tsne_checkpoints(dump, info):
            emb = {lang: dump.hidden(ckpt, lang)[layer] for lang in dump.languages(ckpt)}
            xy = tsne_coordinates(emb, seed=cka["seed"])
            xy.insert(0, "layer", layer)
            xy.insert(0, "checkpoint", ckpt)
            frames.append(xy)
        write_table(pd.concat(frames, ignore_index=True), folder, "tsne", formats=("csv",))


def _tsne_checkpoints(dump, info) -> list[str]:
    """The pretrained model and the first checkpoint of each set size and condition (t-SNE is slow)."""
    chosen, seen = [], set()
    for ckpt in dump.checkpoints:
        e = info[ckpt]
        key = (e.get("kind"), e.get("set_size"), e.get("condition"))
        if key not in seen:
            seen.add(key)
            chosen.append(ckpt)
    return chosen
