"""``python -m xltstats.fit``: from a results table to a folder of tables, models and a report.

The run goes through these steps, each skipped when the data cannot support it:

1. load the results table (a registry dataset or a user's file) and validate it;
2. compute pair features for every (source, target) pair and join them with the dataset's own
   covariates (multi-source rows get source-weighted features);
3. OLS on standardised features with robust standard errors, VIFs, feature-group comparison and
   a dominance (Shapley) decomposition of R²;
4. a crossed mixed-effects model (random intercepts for source and target, and task when tasks
   are pooled);
5. few-shot curves and data demand when the data has several target-example counts;
6. cross-validation against baselines, and source-language ranking;
7. predictions, the manifest and the report.

Everything is written into a temporary folder next to ``--out`` and moved into place at the end,
so a failed run leaves no half-written folder behind.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from ._io import AtomicDir, Terminated
from .errors import ConfigError, XltstatsError
from .pipeline.config import FitConfig, load_config
from .progress import Progress
from .datasets.fetch import sha256_of

DEFAULT_OUT = "xltstats-out"
PACKAGES = ["xltstats", "numpy", "scipy", "pandas", "statsmodels", "scikit-learn", "lightgbm",
            "langcodes", "lang2vec", "matplotlib", "seaborn"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m xltstats.fit",
        description="Explain cross-lingual transfer scores with pair features and statistical models.",
    )
    p.add_argument("--data", help="registry dataset name (see --list-datasets) or a results file "
                                  "(.csv .tsv .jsonl .parquet); default: xpos")
    p.add_argument("--out", default=None, help=f"output folder (default: {DEFAULT_OUT})")
    p.add_argument("--mirror", help="read published data from this local folder instead of downloading")
    p.add_argument("--config", help="YAML file with settings merged over the defaults")
    p.add_argument("--seed", type=_seed, help="random seed, an integer >= 0 (default from the configuration: 0)")
    p.add_argument("--no-report", action="store_true", help="do not render the HTML report")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--list-datasets", action="store_true", help="list the registry datasets and exit")
    return p


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.list_datasets:
            from .datasets import dataset_info, list_datasets

            for name in list_datasets():
                print(f"{name}\t{dataset_info(name)['title']}")
            return 0
        run_fit(args, argv)
    except XltstatsError as exc:
        print(f"xltstats.fit: error: {_name_the_data(exc, args)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as exc:
        out = args.out or DEFAULT_OUT
        signal_name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(f"xltstats.fit: interrupted ({signal_name}); {out} was left as it was before this run "
              "(nothing partial is left beside it)", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    return 0


def _name_the_data(exc: Exception, args) -> str:
    """The message, led by the data file when the error came from a model fit that does not know
    which file its rows were read from ("too few rows", "every score is 0.5", ...)."""
    message = str(exc)
    data = getattr(args, "data", None)
    if data and Path(data).is_file() and str(data) not in message and Path(data).name not in message:
        return f"{data}: {message}"
    return message


# --------------------------------------------------------------------------------------------
# The pipeline


def run_fit(args: argparse.Namespace, argv: list[str]) -> Path:
    config = load_config(args.config, {"data": args.data, "seed": args.seed})
    if args.no_report:
        config = config.replace(report=False)
    progress = Progress("xltstats.fit", quiet=args.quiet)
    out = Path(args.out or DEFAULT_OUT)
    _check_out(out)
    np.random.seed(config.seed)

    with AtomicDir(out) as folder:
        work = folder.path
        with warnings.catch_warnings():
            if args.quiet:
                # what the models warn about is recorded in the manifest's notes and the report
                warnings.simplefilter("ignore")
            from .languages import language_options

            # individual_languages: keep pes, cmn, arb, nob apart from their macrolanguages
            with language_options(individual=bool(config.individual_languages)):
                manifest = _run_steps(config, args, argv, work, progress)
        from .references import write_references

        manifest["references"] = write_references(work, manifest)  # references.bib beside it
        _write_json(work / "manifest.json", manifest)
        if config.report:
            with progress.step("rendering the report"):
                from .report import render_report

                render_report(work, work / "report.html", quiet=args.quiet)
        folder.commit()
    progress.info(f"wrote {out}/")
    return out


def _run_steps(config: FitConfig, args, argv: list[str], work: Path, progress: Progress) -> dict:
    from .datasets import load_dataset
    from .models.tables import write_table

    tables = work / "tables"
    tables.mkdir()
    notes: list[str] = []
    mirror = args.mirror

    with progress.step(f"loading {config.data}"):
        data = load_dataset(config.data, mirror=mirror, **({"variant": config.variant} if config.variant else {}))
        data = _apply_subset(data, config.subset)
        _check_one_condition(data)
    progress.info(f"{len(data):,} rows, {data['source'].nunique()} sources, {data['target'].nunique()} targets, "
                  f"{data['task'].nunique()} task(s), {data['model'].nunique()} model(s)")

    with progress.step("computing pair features"):
        data, features, coverage, used = _add_features(data, config, mirror, notes)
    write_table(features, work, "features", formats=("csv",))
    write_table(coverage, work, "feature_coverage", formats=("csv",))
    _write_results(data, work / "results.csv")

    # A column can vary in the data but be constant in the rows that have every used feature
    # (e.g. target_in_pretraining over the PUD languages): leave it out, then look again.
    while True:
        complete = data.dropna(subset=used + ["score"])
        constant = [c for c in used if complete[c].nunique(dropna=True) < 2]
        if not constant or len(complete) == 0:
            break
        for col in constant:
            where = "this data" if data[col].nunique(dropna=True) < 2 else "the rows that have every used feature"
            notes.append(f"{col} is constant in {where} and was skipped")
        used = [c for c in used if c not in constant]
    complete = complete.reset_index(drop=True)
    groups = {g: [c for c in cols if c in used] for g, cols in config.groups.items()}
    groups = {g: cols for g, cols in groups.items() if cols}
    dropped = len(data) - len(complete)
    if dropped:
        notes.append(f"{dropped} of {len(data)} rows miss at least one used feature and were left out of the model fits")
    if not used:
        pairs = data[["source", "target"]].drop_duplicates()
        languages = sorted(set(pairs["source"]) | set(pairs["target"]))
        raise ConfigError(
            f"every pair feature is constant in the {len(data)} row(s): the table has "
            f"{len(pairs)} language pair(s) over {len(languages)} language(s) ({', '.join(languages[:10])}); "
            "a fit needs pairs of several source and target languages")
    if len(complete) < len(used) + 10 and len(complete) == len(data):
        raise ConfigError(
            f"the table has only {len(data)} row(s) with a score; fitting {len(used)} features "
            f"({', '.join(used)}) needs at least {len(used) + 10}")
    if len(complete) < len(used) + 10:
        missing = data[used].isna().sum().sort_values(ascending=False, kind="stable")
        worst = ", ".join(f"{c} ({n} of {len(data)} rows)" for c, n in missing.items() if n > 0) or "none"
        raise ConfigError(
            f"only {len(complete)} rows have every used feature ({', '.join(used)}); "
            f"too few to fit {len(used)} features; missing values: {worst}; "
            "leave the worst out of 'features' in the configuration"
        )

    from .models.ols import fit_ols
    from .models.persist import save_model

    with progress.step("fitting OLS"):
        ols = fit_ols(complete, response="score", features=used, groups=groups,
                      cov_type=config.ols.cov_type, standardise=config.ols.standardise)
        write_table(ols.table(), tables, "coef_ols")
        write_table(ols.vif(), tables, "vif")
        if groups:
            write_table(ols.group_comparison(), tables, "group_comparison")
            write_table(ols.dominance(), tables, "dominance")
            pairs = [tuple(p) for p in config.compare if p[0] in groups and p[1] in groups]
            if pairs:
                write_table(ols.compare_groups(pairs, n_boot=config.ols.n_boot, seed=config.seed),
                            tables, "group_tests")

    formula = _mixed_formula(config, used, complete)
    mixed = None
    with progress.step("fitting the crossed mixed-effects model"):
        from .models.mixed import fit_mixed

        mixed = fit_mixed(formula, complete, reml=config.mixed.reml)
        write_table(mixed.table(), tables, "coef_mixed")
        write_table(_variance_table(mixed, config.mixed.ci_boot, config.seed), tables, "variance_components")
        write_table(_mixed_fit_stats(mixed), tables, "mixed_fit")
        if groups:
            from .models.mixed import compare_feature_groups

            write_table(compare_feature_groups(mixed, groups), tables, "group_comparison_mixed")
        for w in getattr(mixed, "warnings", []) or []:
            notes.append(f"mixed model: {w}")

    fewshot_enabled = config.fewshot.enabled
    # auto: when some (model, task, target) was measured at two or more few-shot sizes; one size
    # per target (langrank-mt's n_target_examples is each target's data size) is no curve
    if fewshot_enabled is True or (fewshot_enabled == "auto" and _has_fewshot_curves(data)):
        with progress.step("fitting few-shot curves"):
            from .models.fewshot import fit_fewshot

            curves = fit_fewshot(data, seed=config.seed)
            write_table(curves.table(), tables, "fewshot_params")
            write_table(curves.curves(), tables, "fewshot_curves")
            shares = list(config.fewshot.target_shares)
            write_table(curves.data_demand(shares=shares), tables, "data_demand")
            write_table(curves.pooled_table(shares=shares), tables, "fewshot_pooled")
            write_table(curves.pooled_curves(), tables, "fewshot_pooled_curves")

    with progress.step("cross-validating against baselines"):
        from .models.validation import cross_validate, make_splits

        possible = [s for s in config.cv.schemes if _scheme_possible(s, complete)]
        folds = progress.counter("cross-validation folds", sum(
            len(make_splits(complete, s, config.cv.k, config.seed, max_folds=config.cv.max_folds))
            for s in possible))
        metrics, comparisons, summaries = [], [], []
        for scheme in config.cv.schemes:
            if not _scheme_possible(scheme, complete):
                notes.append(f"cross-validation {scheme} skipped: too few languages")
                continue
            result = cross_validate(complete, features=used, scheme=scheme, k=config.cv.k,
                                    seed=config.seed, mixed_formula=formula,
                                    max_folds=config.cv.max_folds, n_jobs=_n_jobs(config.cv.n_jobs),
                                    progress=folds)
            metrics.append(result.metrics())
            notes += [f"cross-validation {scheme}: {m}" for m in result.not_converged]
            if result.baseline_name is not None:
                comparisons.append(result.comparison().assign(scheme=scheme))
            summaries.append(str(result.summary()))
        if metrics:
            cv = pd.concat(metrics, ignore_index=True)
            write_table(cv, work, "cv", formats=("csv",))
            write_table(cv, tables, "cv")
        if comparisons:
            write_table(pd.concat(comparisons, ignore_index=True), tables, "cv_comparison")
        if summaries:
            (work / "cv_summary.txt").write_text("\n\n".join(summaries) + "\n", encoding="utf-8")

    ranking_enabled = config.ranking.enabled
    single = complete[complete["source"] != "mul"]  # candidates are languages, not multi-source sets
    if ranking_enabled is True or (ranking_enabled == "auto" and _ranking_possible(single)):
        with progress.step("ranking source languages"):
            from .models.ranking import rank_sources
            from .models.validation import group_splits

            n_folds = len(group_splits(single["target"].to_numpy(), config.ranking.max_folds))
            ranking = rank_sources(single, features=used, k=config.ranking.k, seed=config.seed,
                                   max_folds=config.ranking.max_folds, mixed_formula=formula,
                                   progress=progress.counter("ranking folds", n_folds),
                                   n_jobs=_n_jobs(config.cv.n_jobs))  # the same worker threads as the folds of cv
            write_table(ranking.table(), tables, "ranking")
            write_table(ranking.evaluation(), tables, "ranking_ndcg")

    with progress.step("predicting"):
        predictions = _predictions(ols, mixed, complete, data, used)
        write_table(predictions, work, "predictions", formats=("csv",))
        save_model(work, ols=ols, mixed=mixed, features=used, formula=formula, config=config.to_dict())

    return _manifest(config, args, argv, data, used, formula, notes, mirror)


# --------------------------------------------------------------------------------------------
# Steps in detail


def _apply_subset(data: pd.DataFrame, subset: dict | None) -> pd.DataFrame:
    if not subset:
        return data
    for column, keep in subset.items():
        if column not in data.columns:
            raise ConfigError(f"'subset' names column '{column}', which the data does not have "
                              f"(columns: {', '.join(map(str, data.columns))})")
        values = keep if isinstance(keep, list) else [keep]
        data = data[data[column].isin(values)]
    if data.empty:
        raise ConfigError(f"'subset' {subset} leaves no rows")
    return data.reset_index(drop=True)


def _check_one_condition(data: pd.DataFrame) -> None:
    """Rows of different experimental conditions (``condition`` column) are different experiments
    on the same pair: a fit of pair features would pool them silently, so one must be chosen."""
    if "condition" not in data.columns:
        return
    conditions = data["condition"].fillna("(none)").astype(str)
    if conditions.nunique() > 1:
        shown = ", ".join(repr(c) for c in sorted(conditions.unique())[:5])
        more = f" and {conditions.nunique() - 5} more" if conditions.nunique() > 5 else ""
        raise ConfigError(f"the data has {conditions.nunique()} experimental conditions in column "
                          f"'condition' ({shown}{more}); a fit uses one: choose it with "
                          f"'subset: {{condition: ...}}' in the fit config")


DATASET_SIZE_COLUMNS = {"source_pretrain_size", "target_pretrain_size"}
SHARE_FEATURES = {"source_pretrain_share", "target_pretrain_share"}
PRETRAINING_FEATURES = SHARE_FEATURES | {"target_in_pretraining"}


def _add_features(data: pd.DataFrame, config: FitConfig, mirror, notes: list[str]):
    """Join pair features onto the results; returns (data, features, coverage, used columns)."""
    from .features import build_pair_features, feature_coverage
    from .features.data_sizes import pretraining_model_for, pretraining_note
    from .models.multisource import aggregate_multisource

    wanted = list(config.features)
    # A dataset that ships its own pre-training sizes keeps them; the shares from our tables are
    # the fallback for datasets that do not.
    if DATASET_SIZE_COLUMNS & set(data.columns):
        wanted = [f for f in wanted if f not in SHARE_FEATURES]
    # A feature the dataset ships under the same name (LangRank's word_overlap, say) is the
    # dataset's measurement: keep it rather than overwrite it with ours.
    shipped = [f for f in wanted if f in data.columns and pd.to_numeric(data[f], errors="coerce").notna().any()]
    if shipped:
        notes.append(f"kept the dataset's own {', '.join(shipped)} (not recomputed)")
        wanted = [f for f in wanted if f not in shipped]
    # Covariates the dataset does not ship but that follow from the pair alone (same_script,
    # target_in_pretraining, ...: no corpus, no tokenizer) are computed.
    from .features.build import DEFAULT_FEATURES

    wanted += [c for c in config.covariates if c not in data.columns and c in DEFAULT_FEATURES and c not in wanted]
    if "same_language" in config.covariates and "same_language" not in data.columns:
        data = data.assign(same_language=(data["source"] == data["target"]).astype(float))
    single = data[data["source"] != "mul"]
    pairs = single[["source", "target"]].drop_duplicates()
    if "source_languages" in data.columns:
        from .results import parse_source_languages

        multi_pairs = []
        for value, target in data.loc[data["source"] == "mul", ["source_languages", "target"]].itertuples(index=False):
            multi_pairs += [(s, target) for s in parse_source_languages(value)]
        pairs = pd.concat([pairs, pd.DataFrame(multi_pairs, columns=["source", "target"])]).drop_duplicates()
    pairs = pairs.sort_values(["source", "target"]).reset_index(drop=True)
    if pretraining_note(data["model"].unique()) and set(wanted) & PRETRAINING_FEATURES:
        notes.append(pretraining_note(data["model"].unique()))
    features = build_pair_features(pairs, features=wanted, model=pretraining_model_for(data["model"].unique()),
                                   corpus=config.lexical_corpus,
                                   tokenizer=config.tokenizer, mirror=mirror, on_unknown="nan")
    coverage = feature_coverage(features)
    feature_cols = [c for c in features.columns if c in wanted]
    for missing in sorted(set(wanted) - set(feature_cols)):
        notes.append(f"feature {missing} is not available and was skipped")
    data = data.drop(columns=[c for c in feature_cols if c in data.columns])
    if (data["source"] == "mul").any():
        data = aggregate_multisource(data, features[["source", "target", *feature_cols]])
    else:
        data = data.merge(features[["source", "target", *feature_cols]], on=["source", "target"], how="left")
    covariates = [c for c in config.covariates if c in data.columns]
    used = []
    for col in feature_cols + shipped + covariates:
        values = pd.to_numeric(data[col], errors="coerce")
        if values.notna().sum() == 0:
            notes.append(f"{col} has no values for this data and was skipped")
        elif col not in used:  # constant columns are left out where complete rows are known
            data[col] = values.astype(float)
            used.append(col)
    return data, features, coverage, used


def _mixed_formula(config: FitConfig, used: list[str], data: pd.DataFrame) -> str:
    formula = config.mixed.formula
    if formula:
        return formula
    random = ["(1 | source)", "(1 | target)"]
    if data["task"].nunique() > 1:
        random.append("(1 | task)")
    if data["model"].nunique() > 1:
        random.append("(1 | model)")
    fixed = " + ".join(used) if used else "1"
    return f"score ~ {fixed} + {' + '.join(random)}"


def _variance_table(mixed, n_boot: int | None, seed: int) -> pd.DataFrame:
    """Variance components with intervals (profile likelihood, or a parametric bootstrap of
    ``n_boot`` draws when given) and their share of the total."""
    table = mixed.variance_components_ci(n_boot=n_boot or None, seed=seed)
    table.index.name = "component"
    table = table.reset_index()
    table.insert(2, "sd", np.sqrt(table["variance"]))
    total = float(table["variance"].sum())
    table["share"] = table["variance"] / total if total > 0 else np.nan
    return table


def _mixed_fit_stats(mixed) -> pd.DataFrame:
    rows = [("log_likelihood", mixed.llf), ("aic", getattr(mixed, "aic", np.nan)),
            ("bic", getattr(mixed, "bic", np.nan)), ("r2_marginal", getattr(mixed, "r2_marginal", np.nan)),
            ("r2_conditional", getattr(mixed, "r2_conditional", np.nan)),
            ("converged", float(bool(mixed.converged))), ("singular", float(bool(getattr(mixed, "singular", False)))),
            ("n_observations", float(getattr(mixed, "nobs", np.nan)))]
    return pd.DataFrame(rows, columns=["statistic", "value"])


def _has_fewshot_curves(data: pd.DataFrame) -> bool:
    keys = [c for c in ("model", "task", "target") if c in data.columns]
    return bool((data.groupby(keys, sort=False)["n_target_examples"].nunique() >= 2).any())


def _n_jobs(value) -> int:
    """Worker threads for a config section's ``n_jobs`` (``auto``: the CPUs this process may use, at most 8)."""
    if value == "auto":
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cpus = os.cpu_count() or 1
        return max(1, min(cpus, 8))
    return int(value)


def _scheme_possible(scheme: str, data: pd.DataFrame) -> bool:
    if scheme == "leave-one-target-out":
        return data["target"].nunique() >= 3
    if scheme == "leave-one-source-out":
        return data["source"].nunique() >= 3 and (data["source"] != "mul").all()
    return len(data) >= 20


def _ranking_possible(data: pd.DataFrame) -> bool:
    counts = data[data["source"] != data["target"]].groupby("target")["source"].nunique()
    return bool(len(counts)) and counts.median() >= 3


def _predictions(ols, mixed, complete: pd.DataFrame, data: pd.DataFrame, used: list[str]) -> pd.DataFrame:
    keys = [c for c in ["model", "task", "source", "target", "n_source_examples", "n_target_examples", "seed"]
            if c in complete.columns]
    pred = complete[keys + ["score"]].copy()
    ols_pi = ols.prediction_interval(complete)
    pred["ols_prediction"] = ols_pi["prediction"].to_numpy()
    pred["ols_lower"] = ols_pi["lower"].to_numpy()
    pred["ols_upper"] = ols_pi["upper"].to_numpy()
    if mixed is not None:
        mpi = mixed.prediction_interval(complete)
        pred["mixed_prediction"] = mpi["prediction"].to_numpy()
        pred["mixed_lower"] = mpi["lower"].to_numpy()
        pred["mixed_upper"] = mpi["upper"].to_numpy()
    return pred.sort_values(keys).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Output


def _write_results(data: pd.DataFrame, path: Path) -> None:
    from .results import write_results

    sort = [c for c in ["model", "task", "source", "target", "n_source_examples", "n_target_examples", "seed"]
            if c in data.columns]
    write_results(data.sort_values(sort).reset_index(drop=True), path)


def _check_out(out: Path) -> None:
    """Refuse, before any work, an --out the fit must not replace."""
    if out.is_symlink():
        raise ConfigError(f"--out {out} is a symbolic link (to {os.readlink(out)}); the fit replaces its output "
                          "folder as a whole, so give the real folder")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    resolved, here = out.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents or out.name in ("", ".", ".."):
        raise ConfigError(f"--out {out} is the current folder or one above it ({resolved}); the fit replaces its "
                          "output folder as a whole: give a folder below the current one, e.g. --out fit")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").exists():
        raise ConfigError(f"--out {out} is a non-empty folder that is not an xltstats fit; "
                          "choose another folder or empty it")


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def _manifest(config, args, argv, data, used, formula, notes, mirror) -> dict:
    from .datasets import dataset_files, dataset_info, list_datasets
    from .datasets.fetch import fetch

    name = config.data
    inputs = []
    dataset = None
    if name in list_datasets():
        info = dataset_info(name)
        dataset = {"name": name, "title": info.get("title"), "citation": info.get("citation"),
                   "licence": info.get("licence"), "origin": info.get("origin"), "commit": info.get("commit")}
        for remote in dataset_files(name):
            try:
                local = fetch(remote, mirror, quiet=True)
            except XltstatsError:
                continue
            inputs.append({"path": f"{remote.collection}/{remote.path}", "url": remote.url,
                           "sha256": sha256_of(local)})
    else:
        inputs.append({"path": str(Path(name)), "sha256": sha256_of(Path(name))})
    versions = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = __version__ if pkg == "xltstats" else None
    reproduce_argv = ["xltstats.fit"] + [a for a in argv if a not in ("--quiet",)]
    from .reproduce import _xltstats_commit

    return {
        "tool": "xltstats.fit",
        "xltstats_version": __version__,
        "argv": reproduce_argv,
        "command": "python -m " + " ".join(reproduce_argv),
        "cwd": os.getcwd(),  # relative paths in argv are relative to this
        "git_commit": _xltstats_commit(),  # None when xltstats is not run from a git checkout
        "config": config.to_dict(),
        "seed": config.seed,
        "dataset": dataset,
        "inputs": inputs,
        "rows": int(len(data)),
        "features_used": used,
        "formulas": {"ols": "score ~ " + " + ".join(used), "mixed": formula},
        "estimators": {
            "ols": f"OLS on standardised features, {config.ols.cov_type} standard errors",
            "mixed": ("linear mixed model, crossed random intercepts, "
                      f"{'REML' if config.mixed.reml else 'ML'}, profiled deviance (lme4's formulation), "
                      "features in their own units"),
        },
        "notes": notes,
        "versions": versions,
    }


if __name__ == "__main__":
    sys.exit(main())
