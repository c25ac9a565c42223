"""``python -m xltstats.studies.report``: from a study config (and its run folder) to an HTML report.

Runs every analysis the study's results support and writes, into ``--out``:

* multi-source rows: ``sets``, ``selection``, ``selection_summary``, ``set_size_model``
  (:mod:`xltstats.studies.multisource`) and a score-by-set-size figure;
* re-initialisation rows: ``reinit_drops`` (in-language and zero-shot drop per block group with
  intervals) and ``reinit_model`` (:mod:`xltstats.studies.reinit`), and a drop figure;
* a representation dump in the run folder: CKA-by-layer curves with bootstrap bands (each checkpoint
  group, before against after fine-tuning), the pretrained-vs-fine-tuned CKA per layer, language
  separability by layer (single- against multi-source), t-SNE panels coloured by language, and the
  test of CKA as a pair feature beyond URIEL (``cka_pair_feature_lrt``, ``cka_score_correlation``);

``tables/*.csv|md``, ``figures/*.png`` and ``report.html`` (self-contained: figures inline).  The
same inputs give byte-identical files.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import XltstatsError, run_command


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _png(fig, path: Path) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    data = buffer.getvalue()
    from .._io import atomic_write_bytes

    atomic_write_bytes(path, data)
    _figure().close(fig)
    return base64.b64encode(data).decode()


class _Report:
    def __init__(self, out: Path, title: str):
        self.out, self.title, self.parts = out, title, []

    def heading(self, text):
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text):
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def table(self, df: pd.DataFrame, name: str, caption: str, max_rows: int = 40):
        from ..models.tables import write_table

        write_table(df, self.out / "tables", name, formats=("csv", "md"))
        shown = df.head(max_rows)
        body = shown.to_html(index=False, float_format=lambda x: f"{x:.4g}", na_rep="NA", border=0)
        more = f" (first {max_rows} of {len(df)} rows; all in tables/{name}.csv)" if len(df) > max_rows else ""
        self.parts.append(f"<figure><figcaption>{html.escape(caption + more)}</figcaption>{body}</figure>")

    def figure(self, fig, name: str, caption: str):
        data = _png(fig, self.out / "figures" / f"{name}.png")
        self.parts.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
                          f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def write(self):
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
                 "table{border-collapse:collapse;font-size:0.85em}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
                 "img{max-width:100%}figcaption{font-size:0.9em;color:#444;margin:0.3em 0}")
        doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
               f"<style>{style}</style></head><body><h1>{html.escape(self.title)}</h1>"
               + "\n".join(self.parts) + "</body></html>\n")
        from .._io import atomic_write_text

        atomic_write_text(self.out / "report.html", doc)
        return self.out / "report.html"


def _study_vocabularies(study, results, rep):
    """Token sets of each source language's training text under the study's tokenizer, or None."""
    from .multisource.analysis import _candidates
    from .multisource.heuristics import token_vocabularies

    try:
        from ..experiments.runner import load_examples
        from ..experiments.train import load_tokenizer

        spec = study.model
        tok = spec.get("pretrained") or (spec["tokenizer"] if isinstance(spec.get("tokenizer"), str)
                                         else str(study.run_dir / "tokenizer"))
        tokenizer = load_tokenizer(tok)
        langs = sorted({lang for s in _candidates(results)["set"].unique() for lang in s.split("+")})
        task = study.tasks[0].name
        texts = {lang: [" ".join(e["text"]) if "text" in e else " ".join(e["tokens"])
                        for e in load_examples(study, task, lang, "train")] for lang in langs}
        return token_vocabularies(texts, tokenizer)
    except Exception as exc:  # noqa: BLE001 - no tokenizer or text here: the heuristic is left out, said so
        rep.text(f"Vocabulary coverage not computed: {type(exc).__name__}: {exc}")
        return None


def _multisource_section(rep: _Report, results: pd.DataFrame, n_boot: int, seed: int, study=None):
    from .multisource import select, set_size_model
    from .multisource.analysis import _candidates, summarise_selection

    rep.heading("Multi-source training")
    cands = _candidates(results)
    rep.text(f"{cands['candidate'].nunique()} training configurations (source sets), set sizes "
             f"{', '.join(map(str, sorted(cands['set_size'].unique())))}; a set's score is its mean over the "
             "targets every set of its size was evaluated on, and over seeds.")
    heuristics = ["pretraining_size", "diversity_syntax", "diversity_phonology", "diversity_inventory",
                  "diversity_family", "diversity_geography", "script_diversity"]
    vocabularies = _study_vocabularies(study, results, rep) if study is not None else None
    if vocabularies is not None:
        heuristics.insert(1, "vocab_coverage")
        rep.text(f"Vocabulary coverage: the study's tokenizer on the {study.tasks[0].name} training text of each "
                 "source language.")
    selection, per_set = select(results, heuristics=heuristics, n_boot=n_boot, seed=seed, missing="nan",
                                vocabularies=vocabularies)
    if len(per_set):
        rep.table(per_set.sort_values(["task", "set_size", "rank"]).drop(columns=["candidate"]), "sets",
                  "Every source set: mean score, rank among the sets of its size (1 = best) with a 95% bootstrap "
                  "interval over targets and seeds, and each heuristic's value.")
        rep.table(selection, "selection", "Each heuristic's chosen set per pool of equal set size: rank, interval, "
                  "permutation p-value (share of the pool's sets that score at least as well).")
        rep.table(summarise_selection(selection, seed=seed), "selection_summary",
                  "Each heuristic over all pools: mean percentile of its choice (0 = best) against random choices.")
    plt = _figure()
    means = cands.groupby(["task", "set_size", "set"])["score"].mean().reset_index()
    fig, axes = plt.subplots(1, means["task"].nunique(), figsize=(5 * means["task"].nunique(), 3.6), squeeze=False)
    for ax, (task, g) in zip(axes[0], means.groupby("task")):
        ax.scatter(g["set_size"], g["score"], s=14, alpha=0.6, color="#555")
        agg = g.groupby("set_size")["score"].agg(["mean", "std", "count"])
        half = 1.96 * agg["std"].fillna(0) / np.sqrt(agg["count"])
        ax.errorbar(agg.index, agg["mean"], yerr=half, color="C0", marker="o", capsize=3)
        ax.set_xlabel("number of source languages")
        ax.set_ylabel("mean score over targets")
        ax.set_title(task)
    rep.figure(fig, "set_size", "Mean score per source set by set size (dots), mean over sets with a 95% interval.")
    sizes = set_size_model(results)
    rep.table(sizes, "set_size_model", "score ~ set_size + I(set_size^2) + (1|target) + (1|set): the curvature "
              "(negative = inverted U) and the vertex with a delta-method interval.")


def _reinit_section(rep: _Report, results: pd.DataFrame, n_boot: int, seed: int):
    from .reinit import drops, reinit_model

    rep.heading("Layer re-initialisation")
    d = drops(results, n_boot=n_boot, seed=seed)
    rep.table(d, "reinit_drops", "Score change against reinit=none (same model, task, source, target, seed) when "
              "the listed blocks are re-initialised before fine-tuning; in-language and zero-shot rows, 95% "
              "bootstrap intervals over targets and seeds.")
    plt = _figure()
    tasks = list(d["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        g = d[d["task"] == task]
        x = np.arange(len(g))
        for offset, name, colour in ((-0.15, "in_language", "C0"), (0.15, "zero_shot", "C3")):
            y = g[f"{name}_delta"].to_numpy(float)
            err = np.vstack([y - g[f"{name}_ci_low"].to_numpy(float), g[f"{name}_ci_high"].to_numpy(float) - y])
            ax.errorbar(x + offset, y, yerr=np.nan_to_num(err), fmt="o", color=colour, capsize=3,
                        label=name.replace("_", "-"))
        ax.axhline(0, color="#999", lw=0.8)
        ax.set_xticks(x, g["block"])
        ax.set_xlabel("re-initialised blocks (0-based)")
        ax.set_ylabel("score change")
        ax.set_title(task)
        ax.legend(fontsize=8)
    rep.figure(fig, "reinit_drops", "Drop per re-initialised block group, in-language against zero-shot.")
    model, notes = reinit_model(results)
    if len(model):
        rep.table(model, "reinit_model", "delta ~ C(block) * zero_shot + (1|target) + (1|seed).")
    for note in notes:
        rep.text("Note: " + note)


def _layer_axis(ax) -> None:
    ax.set_xlabel("layer (0 = embeddings)")
    ax.xaxis.set_major_locator(_integer_ticks())


def _cka_curves(ax, groups, ylabel: str, *, legend_size: int) -> None:
    """One CKA-by-layer curve per group (mean over its rows) with the mean bootstrap band."""
    for i, (label, g) in enumerate(groups):
        by = g.groupby("layer")[["cka", "ci_low", "ci_high"]].mean()
        ax.plot(by.index, by["cka"], marker="o", color=f"C{i}", label=label)
        ax.fill_between(by.index, by["ci_low"], by["ci_high"], color=f"C{i}", alpha=0.15)
    _layer_axis(ax)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=legend_size)


def _representation_section(rep: _Report, folder: Path, results: pd.DataFrame | None):
    rep.heading("Representations: CKA and language mingling")
    cka = pd.read_csv(folder / "cka.csv")
    plt = _figure()
    lang = cka[cka["comparison"] == "languages"].copy()
    lang["group"] = np.where(lang["checkpoint"] == "pretrained", "pretrained",
                             "fine-tuned, " + lang["set_size"].fillna(0).astype(int).astype(str) + " source(s)")
    cond = lang["condition"].astype(object).where(lang["condition"].notna(), "").astype(str) \
        if "condition" in lang.columns else pd.Series("", index=lang.index)
    if cond.str.len().gt(0).any():
        lang.loc[cond != "", "group"] = "fine-tuned, " + cond[cond != ""]
    for kernel, kk in lang.groupby(["kernel", "bandwidth"], dropna=False):
        fig, ax = plt.subplots(figsize=(6, 3.8))
        _cka_curves(ax, kk.groupby("group", sort=True), "CKA between languages", legend_size=7)
        label = "-".join(str(k) for k in kernel if isinstance(k, str) and k)
        n = int(kk["n_sentences"].iloc[0])
        rep.figure(fig, f"cka_by_layer_{label}", f"{label} CKA between the parallel sentences of two languages by "
                   f"layer (mean over language pairs; bands: mean of the pairs' 95% bootstrap intervals), n = {n} "
                   "sentences per language.")
    change = cka[cka["comparison"] == "checkpoints"]
    if len(change):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        _cka_curves(ax, change.groupby("kernel"), "CKA(pretrained, fine-tuned)", legend_size=8)
        rep.figure(fig, "cka_before_after", "How much fine-tuning changed each layer: CKA between the same "
                   "sentences before and after fine-tuning (1 = unchanged), mean over checkpoints and languages.")
    ming_path = folder / "mingling.csv"
    if ming_path.is_file():
        ming = pd.read_csv(ming_path)
        ming["group"] = np.where(ming["checkpoint"] == "pretrained", "pretrained",
                                 ming["set_size"].fillna(0).astype(int).astype(str) + " source(s)")
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for i, (group, g) in enumerate(ming.groupby("group")):
            by = g.groupby("layer")[["knn_purity_excess", "silhouette"]].mean()
            axes[0].plot(by.index, by["knn_purity_excess"], marker="o", color=f"C{i}", label=group)
            axes[1].plot(by.index, by["silhouette"], marker="o", color=f"C{i}", label=group)
        axes[0].set_ylabel("k-NN language purity − chance")
        axes[1].set_ylabel("silhouette of language labels")
        for ax in axes:
            _layer_axis(ax)
        axes[0].legend(fontsize=8)
        rep.figure(fig, "mingling", "Language separability by layer (lower = languages more mingled), mean over "
                   "checkpoints of each group.")
        rep.table(ming.drop(columns=["group"]), "mingling", "Mingling per checkpoint and layer.")
    per_path = folder / "mingling_languages.csv"
    if per_path.is_file():
        per = pd.read_csv(per_path)
        tuned = per[per["checkpoint"] != "pretrained"].copy()
        if len(tuned) and tuned["set_size"].notna().any():
            out_of_set = tuned[~tuned["in_source_set"].astype(str).str.lower().eq("true")]
            summary = (out_of_set.groupby(["set_size", "layer"])[["knn_purity_excess", "mean_cka"]]
                       .agg(["mean", "count"]).reset_index())
            summary.columns = ["_".join(c).strip("_") for c in summary.columns]
            rep.table(summary, "mingling_out_of_set", "Languages outside a checkpoint's source set: their k-NN "
                      "language purity above chance and mean CKA with the other languages, by number of source "
                      "languages and layer (Lim et al.: more sources, more mingling of unseen languages).")
    tsne_path = folder / "tsne.csv"
    if tsne_path.is_file():
        tsne = pd.read_csv(tsne_path)
        ckpts = list(dict.fromkeys(tsne["checkpoint"]))
        fig, axes = plt.subplots(1, len(ckpts), figsize=(3.4 * len(ckpts), 3.4), squeeze=False)
        langs = sorted(tsne["language"].unique())
        for ax, ckpt in zip(axes[0], ckpts):
            g = tsne[tsne["checkpoint"] == ckpt]
            for i, language in enumerate(langs):
                h = g[g["language"] == language]
                ax.scatter(h["x"], h["y"], s=6, color=f"C{i % 10}", label=language)
            ax.set_title(ckpt, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0][0].legend(fontsize=7, markerscale=2)
        rep.figure(fig, "tsne", f"t-SNE (sklearn, cosine, PCA init, fixed seed) of the sentence embeddings at layer "
                   f"{int(tsne['layer'].iloc[0])}, coloured by language.")
    if results is not None:
        from .cka.pairfeature import cka_adds_to_uriel, cka_score_correlation

        try:
            corr = cka_score_correlation(results, cka)
            if len(corr):
                rep.table(corr, "cka_score_correlation", "Correlation over language pairs of the pretrained model's "
                          "CKA at each layer with the zero-shot score.")
            test = cka_adds_to_uriel(results, cka)
        except XltstatsError as exc:
            rep.text(f"CKA as a pair feature: not computed ({exc}).")
            return
        if len(test["lrt"]):
            rep.table(test["lrt"], "cka_pair_feature_lrt", f"Does CKA at layer {test['layer']} add to URIEL distances "
                      f"in explaining zero-shot scores? Likelihood-ratio test (ML), {test['n_rows']} rows, "
                      f"{test['n_pairs']} language pairs.")
            rep.table(test["coefficients"], "cka_pair_feature_coefficients", "The larger model's coefficients "
                      "(standardised features).")
        for note in test["notes"]:
            rep.text("CKA as a pair feature: " + note)


def build(study_path, results_path=None, out=None, *, n_boot: int = 1000, seed: int = 0) -> Path:
    from ..experiments.config import load_study
    from ..results import read_results, validate_results

    study = load_study(study_path, check_data=False)
    out = Path(out) if out else study.run_dir / "report"
    if results_path is None:
        from ..experiments.runner import merge

        results_path = study.run_dir / "results.csv"
        merge(study, results_path)
    results = read_results(results_path)
    validate_results(results)
    rep = _Report(out, f"Study {study.name}: {study.model_name}")
    rep.text(f"{len(results)} results rows from {results_path}; tasks {', '.join(sorted(results['task'].unique()))}.")
    if (results["source"] == "mul").any():
        _multisource_section(rep, results, n_boot, seed, study)
    if "condition" in results.columns and results["condition"].fillna("").astype(str).str.contains("reinit=").any():
        _reinit_section(rep, results, n_boot, seed)
    folder = study.run_dir / "representations"
    if (folder / "cka.csv").is_file():
        _representation_section(rep, folder, results)
    return rep.write()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xltstats.studies.report", description=__doc__.split("\n")[0])
    p.add_argument("--study", required=True, help="study config (YAML)")
    p.add_argument("--results", help="results table (default: merged from the run folder's journals)")
    p.add_argument("--out", help="output folder (default: <run_dir>/report)")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    return run_command("xltstats.studies.report", _run, args)


def _run(args) -> Path:
    t0 = time.perf_counter()
    path = build(args.study, args.results, args.out, n_boot=args.n_boot, seed=args.seed)
    print(f"wrote {path} ({time.perf_counter() - t0:.1f} s)")
    return path


if __name__ == "__main__":
    sys.exit(main())
