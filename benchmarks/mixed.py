"""Benchmark and reference data for crossed mixed models: xltstats vs lme4 vs statsmodels.

Usage::

    python benchmarks/mixed.py export DIR      # write the CSV tables that lme4_reference.R reads
    python benchmarks/mixed.py run [--sizes 7k,55k,500k] [--no-statsmodels] [--no-rscript]

``run`` prints, per table size, lme4's time measured in the same run (when ``Rscript`` with lme4 is
installed; otherwise, labelled so, from ``tests/golden/lme4_timings.json`` written by
``benchmarks/lme4_reference.R`` on another machine), statsmodels' time, ours, the ratios, and next to
every time how far our estimates are from lme4's (log-likelihood, fixed effects, variance components).  The xpos table is read from the published xpos results (``$XLTSTATS_MIRROR`` or
``../shared/data/published``); larger tables replicate the xpos design over simulated seeds and
tasks with known variance components.

The same module builds the tables for the tests (``tests/test_mixed_golden.py`` loads it by
path), so R and Python fit exactly the same rows.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
#: The main results file of the xpos repository (its results/README.md names it).
XPOS_RESULTS = "xpos/results/udpos-ft-10000.csv"
XPOS_LANGS = "xpos/results/udpos-langs.csv"

XPOS_FORMULAS = {
    "xpos_intercepts": "score ~ 1 + (1|source) + (1|target)",
    "xpos_covariates": "score ~ same_language + same_script + (1|source) + (1|target)",
}


def mirror_dir() -> Path | None:
    """The published-data mirror: $XLTSTATS_MIRROR or ../shared/data/published beside the repo."""
    env = os.environ.get("XLTSTATS_MIRROR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "published")
    for c in candidates:
        if not c.is_absolute():
            c = REPO / c
        if (c / XPOS_RESULTS).exists():
            return c
    return None


def xpos_table(mirror: Path | None = None) -> pd.DataFrame:
    """The xpos zero-shot POS table (65 sources x 105 targets) with two pair covariates.

    ``same_language`` is 1 where source == target; ``same_script`` is 1 where the two languages
    are written in the same script (from xpos' udpos-langs.csv).  Scores are accuracies in 0-100.
    """
    mirror = mirror or mirror_dir()
    if mirror is None:
        raise FileNotFoundError("xpos results not found: set XLTSTATS_MIRROR to shared/data/published")
    raw = pd.read_csv(mirror / XPOS_RESULTS)
    langs = pd.read_csv(mirror / XPOS_LANGS)
    script = dict(zip(langs["language_id"].astype(str), langs["script"].astype(str)))
    table = pd.DataFrame({
        "source": raw["lang_train"].astype(str).to_numpy(),
        "target": raw["lang_pred"].astype(str).to_numpy(),
        "score": raw["score"].astype(float).to_numpy(),
    })
    table["same_language"] = (table["source"] == table["target"]).astype(int)
    table["same_script"] = [int(script.get(s) is not None and script.get(s) == script.get(t))
                            for s, t in zip(table["source"], table["target"])]
    return table.sort_values(["source", "target"], ignore_index=True)


def replicate_xpos(base: pd.DataFrame, n_seeds: int, n_tasks: int = 1, seed: int = 0,
                   sd_task: float = 3.0, sd_seed_noise: float = 1.0) -> pd.DataFrame:
    """Replicate the xpos design over seeds and tasks with simulated noise.

    Each task shifts all scores by a task effect (sd ``sd_task``); each (task, seed) replicate adds
    independent noise (sd ``sd_seed_noise``) to the published score.  Used for the 55k (8 seeds)
    and 500k (8 seeds x 9 tasks) timing tables.
    """
    rng = np.random.default_rng(seed)
    parts = []
    task_effects = rng.normal(0, sd_task, n_tasks)
    for task in range(n_tasks):
        for s in range(n_seeds):
            part = base.copy()
            part["task"] = f"task{task:02d}"
            part["seed"] = s
            part["score"] = (base["score"].to_numpy() + task_effects[task]
                             + rng.normal(0, sd_seed_noise, len(base)))
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def simulate_slopes(seed: int = 20260101) -> pd.DataFrame:
    """Crossed design with a correlated random slope of ``x`` over ``source`` (known truth).

    30 sources x 40 targets x 2 replicates; score = 50 + 2 x + b_source + s_source * x + b_target + e,
    sd(b_source) = 4, sd(s_source) = 1.5, corr = 0.5, sd(b_target) = 3, sd(e) = 2.
    """
    rng = np.random.default_rng(seed)
    S, T, R = 30, 40, 2
    cov = np.array([[16.0, 0.5 * 4 * 1.5], [0.5 * 4 * 1.5, 2.25]])
    src = rng.multivariate_normal([0, 0], cov, S)
    tgt = rng.normal(0, 3, T)
    rows = []
    for s in range(S):
        for t in range(T):
            for r in range(R):
                x = rng.normal()
                y = 50 + 2 * x + src[s, 0] + src[s, 1] * x + tgt[t] + rng.normal(0, 2)
                rows.append((f"s{s:02d}", f"t{t:02d}", round(x, 6), round(y, 6)))
    return pd.DataFrame(rows, columns=["source", "target", "x", "score"])


def simulate_three_factor(seed: int = 20260102) -> pd.DataFrame:
    """Three crossed factors (source 20, target 25, task 6) with a covariate; known truth.

    score = 60 - 5 d + b_source (sd 4) + b_target (sd 3) + b_task (sd 6) + e (sd 2.5).
    """
    rng = np.random.default_rng(seed)
    S, T, K = 20, 25, 6
    bs, bt, bk = rng.normal(0, 4, S), rng.normal(0, 3, T), rng.normal(0, 6, K)
    rows = []
    for k in range(K):
        for s in range(S):
            for t in range(T):
                d = rng.uniform()
                y = 60 - 5 * d + bs[s] + bt[t] + bk[k] + rng.normal(0, 2.5)
                rows.append((f"s{s:02d}", f"t{t:02d}", f"k{k}", round(d, 6), round(y, 6)))
    return pd.DataFrame(rows, columns=["source", "target", "task", "distance", "score"])


def simulate_singular(seed: int = 20260103) -> pd.DataFrame:
    """Crossed design whose ``target`` variance is truly zero (a singular fit is expected)."""
    rng = np.random.default_rng(seed)
    S, T = 25, 30
    bs = rng.normal(0, 3, S)
    rows = []
    for s in range(S):
        for t in range(T):
            rows.append((f"s{s:02d}", f"t{t:02d}", round(40 + bs[s] + rng.normal(0, 2), 6)))
    return pd.DataFrame(rows, columns=["source", "target", "score"])


#: name -> (table builder, formula) of the golden models; xpos ones need the mirror.
def golden_cases() -> dict:
    return {
        "xpos_intercepts": ("xpos", XPOS_FORMULAS["xpos_intercepts"]),
        "xpos_covariates": ("xpos", XPOS_FORMULAS["xpos_covariates"]),
        "sim_slopes": ("sim_slopes", "score ~ x + (1 + x | source) + (1 | target)"),
        "sim_slopes_uncorrelated": ("sim_slopes", "score ~ x + (1 | source) + (0 + x | source) + (1 | target)"),
        "sim_three_factor": ("sim_three_factor", "score ~ distance + (1|source) + (1|target) + (1|task)"),
        "sim_singular": ("sim_singular", "score ~ 1 + (1|source) + (1|target)"),
        "sim_interaction_group": ("sim_three_factor", "score ~ distance + (1|source) + (1|source:task)"),
    }


def load_golden_table(name: str, mirror: Path | None = None) -> pd.DataFrame:
    """The table a golden case was fitted to: a shipped simulated CSV, or xpos from the mirror."""
    if name == "xpos":
        return xpos_table(mirror)
    return pd.read_csv(GOLDEN / f"lme4_data_{name}.csv")


def build_tables(mirror: Path | None = None) -> dict:
    tables = {"sim_slopes": simulate_slopes(), "sim_three_factor": simulate_three_factor(),
              "sim_singular": simulate_singular()}
    try:
        tables["xpos"] = xpos_table(mirror)
    except FileNotFoundError:
        pass
    return tables


def export(directory: Path) -> None:
    """Write the tables and the model list that ``lme4_reference.R`` reads."""
    directory.mkdir(parents=True, exist_ok=True)
    tables = build_tables()
    for name, table in tables.items():
        table.to_csv(directory / f"{name}.csv", index=False, float_format="%.10g")
        if name.startswith("sim_"):
            # the simulated tables travel with the golden values, so tests fit exactly lme4's rows
            table.to_csv(GOLDEN / f"lme4_data_{name}.csv", index=False, float_format="%.10g")
    # timing tables (replicated xpos design)
    if "xpos" in tables:
        big = replicate_xpos(tables["xpos"], n_seeds=8)
        big.to_csv(directory / "xpos_55k.csv", index=False, float_format="%.10g")
        huge = replicate_xpos(tables["xpos"], n_seeds=8, n_tasks=9)
        huge.to_csv(directory / "xpos_500k.csv", index=False, float_format="%.10g")
    cases = {k: {"table": t, "formula": f} for k, (t, f) in golden_cases().items() if t in tables}
    (directory / "cases.json").write_text(json.dumps(cases, indent=1))


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------

def _time(fn, repeats: int) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls, and the last call's result."""
    best, result = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _lme4_now(table: pd.DataFrame, formula: str, repeats: int) -> dict | None:
    """lme4 fitted now, on this machine: best time of ``repeats`` fits (after one untimed fit), the REML
    log-likelihood, fixed effects and variance components; None without Rscript or lme4."""
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        table.to_csv(path, index=False, float_format="%.10g")
        script = (f"suppressMessages(library(lme4)); d <- read.csv('{path}'); "
                  f"for (g in intersect(c('source','target','task'), names(d))) d[[g]] <- factor(d[[g]]); "
                  f"m <- lmer({formula}, data = d); "
                  f"t <- sapply(1:{repeats}, function(i) system.time(lmer({formula}, data = d))[['elapsed']]); "
                  "cat('time', min(t), '\\n'); cat('loglik', sprintf('%.17g', as.numeric(logLik(m))), '\\n'); "
                  "f <- fixef(m); for (i in seq_along(f)) cat('fixef', names(f)[i], sprintf('%.17g', f[[i]]), '\\n'); "
                  "v <- as.data.frame(VarCorr(m)); v <- v[is.na(v$var2), ]; "
                  "for (i in seq_len(nrow(v))) cat('var', v$grp[i], sprintf('%.17g', v$vcov[i]), '\\n')")
        out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
    parsed = {"seconds": None, "fixef": {}, "variances": {}, "logLik_REML": None, "source": "lme4 now"}
    for line in out.stdout.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "time":
            parsed["seconds"] = float(parts[1])
        elif parts[0] == "loglik":
            parsed["logLik_REML"] = float(parts[1])
        elif parts[0] == "fixef":
            parsed["fixef"][parts[1]] = float(parts[2])
        elif parts[0] == "var":
            parsed["variances"][parts[1]] = float(parts[2])
    return parsed if parsed["seconds"] is not None else None


def agreement(ours, reference: dict) -> dict:
    """How far our fit is from lme4's: |log-likelihood difference|, the largest |fixed-effect
    difference| and the largest relative variance difference (over the components both name)."""
    out = {"d_loglik": None, "max_d_fixef": None, "max_rel_d_var": None}
    if reference.get("logLik_REML") is not None:
        out["d_loglik"] = abs(float(ours.llf) - reference["logLik_REML"])
    names = {"(Intercept)": "Intercept"}
    diffs = [abs(float(ours.params[names.get(k, k)]) - v) for k, v in reference.get("fixef", {}).items()
             if names.get(k, k) in ours.params.index]
    if diffs:
        out["max_d_fixef"] = max(diffs)
    vc = ours.varcorr
    ours_var = {str(r.group): float(r.variance) for r in vc.itertuples() if r.term2 is None or r.term2 != r.term2}
    rel = [abs(ours_var[g] - v) / v for g, v in reference.get("variances", {}).items() if g in ours_var and v > 0]
    if rel:
        out["max_rel_d_var"] = max(rel)
    return out


def _statsmodels_only(formula: str, table: pd.DataFrame) -> None:
    """statsmodels' MixedLM alone (its own model building and fit, no comparison fit)."""
    import warnings

    from xltstats.models.mixed._design import prepare
    from xltstats.models.mixed._statsmodels import statsmodels_model

    parsed, frame, design, _ = prepare(formula, table)
    model, _kind = statsmodels_model(parsed, frame, design, reml=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(reml=True)


def run(sizes: list[str], with_statsmodels: bool, with_rscript: bool) -> pd.DataFrame:
    """Per table size: lme4's time (measured now when Rscript and lme4 are there, else the golden
    file's, measured on another machine, and labelled so), statsmodels', ours, the ratios, and our
    agreement with lme4's estimates (now, or the golden file's: the estimates do not depend on the
    machine)."""
    sys.path.insert(0, str(REPO))
    from xltstats.models import fit_mixed

    base = xpos_table()
    golden_timings = {}
    timing_file = GOLDEN / "lme4_timings.json"
    if timing_file.exists():
        golden_timings = json.loads(timing_file.read_text())
    formula_2 = "score ~ 1 + (1|source) + (1|target)"
    formula_3 = "score ~ 1 + (1|source) + (1|target) + (1|task)"
    plans = {
        "7k": (base, formula_2, "xpos_6825"),
        "55k": (replicate_xpos(base, n_seeds=8), formula_2, "xpos_54600"),
        "500k": (replicate_xpos(base, n_seeds=8, n_tasks=9), formula_3, "xpos_491400_tasks"),
    }
    rows = []
    for size in sizes:
        table, formula, key = plans[size]
        repeats = 5 if len(table) < 100_000 else 2
        ours_t, ours = _time(lambda: fit_mixed(formula, table, warn=False), repeats)
        reference = _lme4_now(table, formula, repeats) if with_rscript else None
        if reference is None:
            reference = dict(golden_timings.get(key, {}), source="golden file (another machine)")
        lme4_t = reference.get("seconds")
        sm_t = None
        if with_statsmodels and len(table) <= 100_000:
            sm_t, _ = _time(lambda: _statsmodels_only(formula, table), 1)
        rows.append({"table": key, "rows": len(table), "formula": formula, "lme4_s": lme4_t,
                     "lme4_timed": reference.get("source"), "statsmodels_s": sm_t, "xltstats_s": ours_t,
                     "xltstats/lme4": ours_t / lme4_t if lme4_t else None,
                     "statsmodels/xltstats": sm_t / ours_t if sm_t else None, **agreement(ours, reference)})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_export = sub.add_parser("export", help="write CSV tables for lme4_reference.R")
    p_export.add_argument("directory", type=Path)
    p_run = sub.add_parser("run", help="time lme4, statsmodels and xltstats")
    p_run.add_argument("--sizes", default="7k,55k,500k")
    p_run.add_argument("--no-statsmodels", action="store_true")
    p_run.add_argument("--no-rscript", action="store_true", help="do not run lme4 now even when Rscript is "
                       "there (its times then come from tests/golden/lme4_timings.json, another machine)")
    args = parser.parse_args(argv)
    if args.command == "export":
        export(args.directory)
        return 0
    table = run(args.sizes.split(","), not args.no_statsmodels, not args.no_rscript)
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(table.drop(columns=["formula"]).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print("d_loglik: |our REML log-likelihood - lme4's|; max_d_fixef: largest |fixed effect difference|; "
          "max_rel_d_var: largest relative variance-component difference (against lme4_timed's fit)")
    if "500k" in args.sizes and not args.no_statsmodels:
        print("statsmodels is skipped above 100k rows (it takes minutes).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
