"""Long tables of CKA and mingling from a hidden-state dump (``cka.csv``, ``mingling.csv``).

``cka_table`` rows (one per checkpoint, language pair, layer, kernel):

``model, checkpoint, task, comparison, source_lang, target_lang, reference_checkpoint, layer, kernel,
bandwidth, threshold, debiased, pooling, n_sentences, cka, ci_low, ci_high, n_boot, seed,
batch_mean, batch_sd, batch_size, n_batches``

* ``comparison = languages``: the same checkpoint's representations of parallel sentences in two
  languages (Muller et al. 2021: source ``eng`` against every other language);
* ``comparison = checkpoints``: the same language in ``reference_checkpoint`` (the pretrained model)
  and in ``checkpoint`` (fine-tuned): how much fine-tuning changed layer ``layer``.

``ci_low``/``ci_high`` are basic bootstrap intervals (:func:`.core.interval`) from resampling the
parallel sentences (``n_boot`` resamples).  The resample indices depend only on (seed, pair, layer), not on the
checkpoint, so the intervals of two checkpoints come from the same resamples.  ``batch_*`` are
CKA on ``n_batches`` disjoint blocks of the sentences (the released script's statistic, without
its overlapping windows).
"""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from ...errors import InputError
from .core import Kernel, bootstrap_draws, cka_batches, cka_from_grams, interval
from .dumps import Dump
from .mingling import knn_language_purity, silhouette_languages

CKA_COLUMNS = ["model", "checkpoint", "task", "comparison", "source_lang", "target_lang",
               "reference_checkpoint", "layer", "kernel", "bandwidth", "threshold", "debiased", "pooling",
               "n_sentences", "cka", "ci_low", "ci_high", "n_boot", "seed", "batch_mean", "batch_sd",
               "batch_size", "n_batches"]
MINGLING_LANGUAGE_COLUMNS = ["model", "checkpoint", "layer", "language", "mean_cka", "knn_purity", "chance",
                             "knn_purity_excess", "k", "n_sentences"]
MINGLING_COLUMNS = ["model", "checkpoint", "task", "layer", "n_languages", "n_sentences", "mean_cka",
                    "min_cka", "max_cka", "kernel", "knn_purity", "chance", "knn_purity_excess", "k",
                    "silhouette"]


def parse_kernel(text: str) -> Kernel:
    """``linear``, ``linear-debiased``, ``rbf-muller``, ``rbf-kornblith``, ``rbf-kornblith-0.5`` (+ ``-debiased``)."""
    parts = str(text).split("-")
    debiased = parts[-1] == "debiased"
    if debiased:
        parts = parts[:-1]
    try:
        if parts == ["linear"]:
            return Kernel("linear", debiased=debiased)
        if parts[0] == "rbf" and len(parts) in (2, 3):
            threshold = float(parts[2]) if len(parts) == 3 else 1.0
            return Kernel("rbf", parts[1], threshold, debiased)
    except ValueError:
        pass
    raise InputError(f"unknown CKA kernel {text!r}; use linear, rbf-muller, rbf-kornblith[-THRESHOLD], "
                     "each optionally with -debiased")


def _rng(seed: int, *key) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32("/".join(map(str, key)).encode())])


def _bootstrap(kernel: Kernel, bx: np.ndarray, by: np.ndarray, n_boot: int, rng, alpha: float,
               method: str = "basic"):
    est = cka_from_grams(kernel.gram(bx), kernel.gram(by), kernel.debiased)
    low, high, used = interval(est, bootstrap_draws(kernel, bx, by, n_boot, rng), alpha, method)
    return est, low, high, used


def _layers(dump: Dump, checkpoint: str, layers) -> list[int]:
    n_layers = dump.entry(checkpoint, dump.languages(checkpoint)[0])["n_layers"]
    if layers is None:
        return list(range(n_layers + 1))
    bad = [layer for layer in layers if not 0 <= int(layer) <= n_layers]
    if bad:
        raise InputError(f"layer {bad[0]} out of range: checkpoint {checkpoint!r} has layers 0..{n_layers} "
                         "(0 = embeddings)", column="layer")
    return [int(x) for x in layers]


def cka_table(dump: Dump, *, kernels=("linear",), reference: str | None = "eng", layers=None,
              checkpoints=None, n_boot: int = 1000, n_batches: int = 4, alpha: float = 0.05,
              seed: int = 0, baseline: str | None = "pretrained", task: str | None = None) -> pd.DataFrame:
    """CKA of every language against ``reference`` (None: all unordered pairs) per layer, plus the
    same language before (``baseline`` checkpoint) and after fine-tuning, as a long table."""
    kernels = [parse_kernel(k) if isinstance(k, str) else k for k in kernels]
    checkpoints = list(checkpoints) if checkpoints is not None else dump.checkpoints
    unknown = [c for c in checkpoints if c not in dump.checkpoints]
    if unknown:
        raise InputError(f"no checkpoint {unknown[0]!r} in the dump; it has {', '.join(dump.checkpoints)}",
                         file=dump.folder / "manifest.json", column="checkpoint")
    model = dump.manifest.get("model", "")
    task = task if task is not None else dump.manifest.get("task", "")
    pooling = dump.manifest.get("pooling", "")
    rows = []

    def emit(ckpt, comparison, a, b, ref_ckpt, layer, kernel, X, Y):
        bx, by = kernel.base(X), kernel.base(Y)
        est, low, high, used = _bootstrap(kernel, bx, by, n_boot, _rng(seed, comparison, a, b, layer, kernel.label),
                                          alpha)
        try:
            batches = cka_batches(X, Y, n_batches, kernel=kernel)
        except InputError:
            batches = {"cka_mean": np.nan, "cka_sd": np.nan, "batch_size": np.nan}
        rows.append({"model": model, "checkpoint": ckpt, "task": task, "comparison": comparison,
                     "source_lang": a, "target_lang": b, "reference_checkpoint": ref_ckpt, "layer": layer,
                     "kernel": kernel.kind, "bandwidth": kernel.bandwidth or "",
                     "threshold": kernel.threshold if kernel.bandwidth == "kornblith" else np.nan,
                     "debiased": kernel.debiased, "pooling": pooling, "n_sentences": X.shape[0],
                     "cka": est, "ci_low": low, "ci_high": high, "n_boot": used, "seed": seed,
                     "batch_mean": batches["cka_mean"], "batch_sd": batches["cka_sd"],
                     "batch_size": batches["batch_size"], "n_batches": n_batches})

    for ckpt in checkpoints:
        langs = dump.languages(ckpt)
        if reference is not None and reference not in langs:
            raise InputError(f"reference language {reference!r} has no hidden states in checkpoint {ckpt!r} "
                             f"(languages: {', '.join(langs)})", file=dump.folder / "manifest.json")
        if reference is not None:
            pairs = [(reference, lang) for lang in langs if lang != reference]
        else:
            pairs = [(a, b) for i, a in enumerate(langs) for b in langs[i + 1:]]
        hidden = {lang: dump.hidden(ckpt, lang) for lang in langs}
        use = _layers(dump, ckpt, layers)
        for a, b in pairs:
            for layer in use:
                for kernel in kernels:
                    emit(ckpt, "languages", a, b, "", layer, kernel, hidden[a][layer], hidden[b][layer])
        if baseline and ckpt != baseline and baseline in dump.checkpoints:
            base_langs = set(dump.languages(baseline))
            for lang in langs:
                if lang not in base_langs:
                    continue
                before = dump.hidden(baseline, lang)
                if before.shape[:2] != hidden[lang].shape[:2]:
                    raise InputError(f"checkpoints {baseline!r} and {ckpt!r} differ in layers or sentences "
                                     f"for {lang}: {before.shape[:2]} vs {hidden[lang].shape[:2]}",
                                     file=dump.folder / "manifest.json")
                for layer in use:
                    for kernel in kernels:
                        emit(ckpt, "checkpoints", lang, lang, baseline, layer, kernel, before[layer],
                             hidden[lang][layer])
    return pd.DataFrame(rows, columns=CKA_COLUMNS)


def mingling_table(dump: Dump, *, layers=None, checkpoints=None, k: int = 5, kernel="linear",
                   task: str | None = None, by_language: bool = False) -> pd.DataFrame:
    """Per checkpoint and layer: mean/min/max CKA over all language pairs, k-NN purity, silhouette.

    ``by_language=True``: one row per (checkpoint, layer, language) instead, with that language's
    k-NN purity, its chance level and its mean CKA with every other language (Lim et al.'s claim is
    about the languages outside the training set, so a user needs them one by one)."""
    kernel = parse_kernel(kernel) if isinstance(kernel, str) else kernel
    checkpoints = list(checkpoints) if checkpoints is not None else dump.checkpoints
    rows = []
    for ckpt in checkpoints:
        langs = dump.languages(ckpt)
        hidden = {lang: dump.hidden(ckpt, lang) for lang in langs}
        for layer in _layers(dump, ckpt, layers):
            emb = {lang: hidden[lang][layer] for lang in langs}
            grams = {lang: kernel.gram(kernel.base(emb[lang])) for lang in langs}
            values = [cka_from_grams(grams[a], grams[b], kernel.debiased)
                      for i, a in enumerate(langs) for b in langs[i + 1:]]
            purity = knn_language_purity(emb, k=k)
            if by_language:
                for i, lang in enumerate(langs):
                    others = [cka_from_grams(grams[lang], grams[b], kernel.debiased) for b in langs if b != lang]
                    pl = purity["per_language"][lang]
                    rows.append({"model": dump.manifest.get("model", ""), "checkpoint": ckpt, "layer": layer,
                                 "language": lang, "mean_cka": float(np.nanmean(others)),
                                 "knn_purity": pl["knn_purity"], "chance": pl["chance"],
                                 "knn_purity_excess": pl["knn_purity"] - pl["chance"], "k": k,
                                 "n_sentences": int(emb[lang].shape[0])})
                continue
            rows.append({"model": dump.manifest.get("model", ""), "checkpoint": ckpt,
                         "task": task if task is not None else dump.manifest.get("task", ""),
                         "layer": layer, "n_languages": len(langs),
                         "n_sentences": int(next(iter(emb.values())).shape[0]),
                         "mean_cka": float(np.nanmean(values)) if values else np.nan,
                         "min_cka": float(np.nanmin(values)) if values else np.nan,
                         "max_cka": float(np.nanmax(values)) if values else np.nan,
                         "kernel": kernel.label + ("-debiased" if kernel.debiased else ""),
                         "knn_purity": purity["knn_purity"], "chance": purity["chance"],
                         "knn_purity_excess": purity["knn_purity_excess"], "k": k,
                         "silhouette": silhouette_languages(emb)})
    if by_language:
        return pd.DataFrame(rows, columns=MINGLING_LANGUAGE_COLUMNS)
    return pd.DataFrame(rows, columns=MINGLING_COLUMNS)
