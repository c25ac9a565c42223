"""Time ``python -m xltstats.fit`` and each of its stages against a baseline commit, in one run.

Usage::

    python benchmarks/fit.py                                   # every case, baseline db7b87b
    python benchmarks/fit.py --cases xpos-report,xpos-full --repeats 3
    python benchmarks/fit.py --baseline-cases xpos-report,xpos-full   # the 500k case on our side only
    python benchmarks/fit.py --baseline-tree /path/to/checkout        # a checkout of the baseline

The baseline is a ``git worktree`` of ``--baseline`` (default ``db7b87b``, the commit of issue 17's
measurements) made in a temporary folder and removed afterwards; each side runs as a subprocess
with ``PYTHONPATH`` pointing at its tree, on the same inputs, one after the other (baseline, then
ours, for every repeat), so both see the same machine load.  Each side has its own feature cache
(``--cache-root``), filled by a warm-up before anything is timed.

Cases:

* ``xpos-report``: the default fit (xpos, report included);
* ``xpos``: the same without the report;
* ``xpos-full``: xpos over all training lengths (``variant: all``, 61,425 rows), without the report;
* ``synthetic-500k``: a table drawn by :class:`xltstats.models.simulate.CrossedSimulator` on the xpos
  language pairs that have every default feature (each pair repeated over seeds up to 500k rows,
  the dataset's own covariates kept), without the report.

For every run it prints the wall time, the CPU time (user + system of the process and its
threads, from ``wait4``), the peak resident memory, and the wall time of each stage (from the
fit's progress lines on stderr, each stage running until the next one starts); then, per case,
the median over repeats and the ratios baseline / ours.  Finally it compares the output tables of
the two sides (``tables/*.csv``, ``cv.csv``, ``predictions.csv``, ``results.csv``, ``features.csv``,
``feature_coverage.csv``, ``model.json``): files that differ are listed with the columns that
differ and the largest difference, and for ``cv.csv`` the coverage and mean interval width of each
estimator on both sides.  The machine's load average is printed at the start and the end.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from compare_fit_folders import differences  # noqa: E402  (beside this script)

BASELINE = "db7b87b"
CASES = ("xpos-report", "xpos", "xpos-full", "synthetic-500k")
STAGE = re.compile(r"^xltstats\.fit: (?P<name>[^ ].*) \.\.\.$")
COMPARED = ("cv.csv", "predictions.csv", "results.csv", "features.csv", "feature_coverage.csv", "model.json")


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


# --------------------------------------------------------------------------------------------
# Inputs


def synthetic_table(path: Path, rows: int = 500_000, seed: int = 17) -> Path:
    """Write the synthetic table (see the module docstring) to ``path`` (Parquet) unless it exists."""
    if path.exists():
        return path
    sys.path.insert(0, str(REPO))
    from xltstats.datasets import load_dataset
    from xltstats.features import build_pair_features
    from xltstats.features.data_sizes import pretraining_model_for
    from xltstats.models.simulate import CrossedSimulator
    from xltstats.pipeline.config import default_dict as default_config

    config = default_config()
    data = load_dataset("xpos")
    pairs = data[["source", "target"]].drop_duplicates().sort_values(["source", "target"]).reset_index(drop=True)
    features = build_pair_features(pairs, features=list(config["features"]),
                                   model=pretraining_model_for(data["model"].unique()), on_unknown="nan")
    used = [f for f in config["features"] if f in features.columns]
    covariates = [c for c in config["covariates"] if c in data.columns]
    complete = features.dropna(subset=used)[["source", "target", *used]]
    rows_of_pair = data.drop_duplicates(["source", "target"]).merge(complete, on=["source", "target"])
    rows_of_pair = rows_of_pair.dropna(subset=covariates).reset_index(drop=True)
    n_seeds = int(np.ceil(rows / len(rows_of_pair)))
    truth = {"syntactic_distance": -4.0, "genetic_distance": -2.0, "char_ngram_similarity": 3.0}
    sim = CrossedSimulator(rows_of_pair[["source", "target", *truth]], truth, intercept=50.0, sd_source=5.0,
                           sd_target=6.0, sd_residual=3.0, n_seeds=n_seeds)
    drawn = sim.draw(seed)[["source", "target", "seed", "score"]].iloc[:rows]
    drawn["score"] = drawn["score"].clip(0.0, 100.0)  # accuracies: the few draws above 100 are clipped
    keep = ["model", "task", "source", "target", "metric", "n_source_examples", "n_target_examples", *covariates]
    table = drawn.merge(rows_of_pair[keep], on=["source", "target"], how="left")
    table = table[["model", "task", "source", "target", "score", "metric", "n_source_examples", "n_target_examples",
                   "seed", *covariates]]
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)
    return path


def case_arguments(case: str, work: Path) -> list[str]:
    if case == "xpos-report":
        return ["--data", "xpos"]
    if case == "xpos":
        return ["--data", "xpos", "--no-report"]
    if case == "xpos-full":
        config = work / "xpos_full.yaml"
        config.write_text("variant: all\n", encoding="utf-8")
        return ["--data", "xpos", "--config", str(config), "--no-report"]
    if case == "synthetic-500k":
        return ["--data", str(synthetic_table(work / "synthetic_500k.parquet")), "--no-report"]
    raise SystemExit(f"unknown case {case!r}; choose from {', '.join(CASES)}")


# --------------------------------------------------------------------------------------------
# Running


def _env(tree: Path, cache: Path) -> dict:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(tree), XLTSTATS_CACHE=str(cache), MPLBACKEND="Agg")
    return env


def warm_up(tree: Path, cache: Path) -> None:
    """Fill a side's feature cache (the xpos pairs, default features) before anything is timed."""
    # the baseline tree may predate xltstats.pipeline (its defaults were in xltstats.fitconfig)
    code = ("from xltstats.datasets import load_dataset; from xltstats.features import build_pair_features\n"
            "try:\n    from xltstats.pipeline.config import default_dict as default_config\n"
            "except ImportError:\n    from xltstats.fitconfig import default_config\n"
            "d = load_dataset('xpos'); "
            "build_pair_features(d[['source','target']].drop_duplicates(), features=default_config()['features'], "
            "on_unknown='nan')")
    subprocess.run([sys.executable, "-c", code], env=_env(tree, cache), check=True, cwd=tree,
                   stdout=subprocess.DEVNULL)


def run_fit(tree: Path, cache: Path, arguments: list[str], out: Path) -> dict:
    """One fit as a subprocess; wall and CPU time, peak RSS, stage times, the progress lines."""
    if out.exists():
        shutil.rmtree(out)
    command = [sys.executable, "-m", "xltstats.fit", *arguments, "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=_env(tree, cache), cwd=tree, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    stages, lines = [], []
    for line in proc.stderr:
        now = time.perf_counter() - start
        lines.append(line.rstrip("\n"))
        match = STAGE.match(lines[-1])
        if match:
            stages.append([match["name"], now, None])
            if len(stages) > 1:
                stages[-2][2] = now
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if stages:
        stages[-1][2] = wall
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print("\n".join(lines[-30:]), file=sys.stderr)
        raise SystemExit(f"{' '.join(command)} exited with {code}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_gib": usage.ru_maxrss / 1024 ** 2,
            "stages": {_stage_key(name): end - begin for name, begin, end in stages}, "lines": lines}


def _stage_key(name: str) -> str:
    name = re.sub(r"^loading .*", "loading", name)
    return {"computing pair features": "features", "fitting OLS": "ols",
            "fitting the crossed mixed-effects model": "mixed", "fitting few-shot curves": "fewshot",
            "cross-validating against baselines": "cv", "ranking source languages": "ranking",
            "predicting": "predict", "rendering the report": "report"}.get(name, name)


# --------------------------------------------------------------------------------------------
# Comparing outputs


def _read(path: Path):
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    return pd.read_csv(path, keep_default_na=True, low_memory=False)


def compare_outputs(old: Path, new: Path) -> list[str]:
    """Lines describing every compared output that differs between two fit folders."""
    names = sorted({p.relative_to(old).as_posix() for p in (old / "tables").glob("*.csv")}
                   | {p.relative_to(new).as_posix() for p in (new / "tables").glob("*.csv")}
                   | {n for n in COMPARED if (old / n).exists() or (new / n).exists()})
    names = [n for n in names if not Path(n).name.startswith("report_")]  # written by the report
    out = []
    for name, what in differences(old, new, names, sides=("the baseline", "ours")):
        if what.startswith("only in"):
            out.append(f"  {name}: {what}")
            continue
        a, b = old / name, new / name
        if a.suffix == ".json":
            out.append(f"  {name}: differs")
            continue
        x, y = _read(a), _read(b)
        if x.shape != y.shape or list(x.columns) != list(y.columns):
            out.append(f"  {name}: shape {x.shape} -> {y.shape}")
            continue
        cols = []
        for c in x.columns:
            if x[c].equals(y[c]):
                continue
            if pd.api.types.is_numeric_dtype(x[c]) and pd.api.types.is_numeric_dtype(y[c]):
                d = float(np.nanmax(np.abs(x[c].to_numpy(float) - y[c].to_numpy(float)))) \
                    if (x[c].notna() | y[c].notna()).any() else 0.0
                nan = int((x[c].isna() != y[c].isna()).sum())
                cols.append(f"{c} (max |diff| {d:.3g}" + (f", {nan} NaN mismatches" if nan else "") + ")")
            else:
                cols.append(f"{c} ({int((x[c].astype(str) != y[c].astype(str)).sum())} cells)")
        out.append(f"  {name}: " + ("; ".join(cols) if cols else "same values, different text"))
        if name == "cv.csv" and {"estimator", "scheme", "coverage", "mean_interval_width"} <= set(x.columns):
            both = x.merge(y, on=["estimator", "scheme"], suffixes=("_baseline", "_ours"))
            changed = both[(both["coverage_baseline"] != both["coverage_ours"])
                           | (both["mean_interval_width_baseline"] != both["mean_interval_width_ours"])]
            for r in changed.itertuples():
                out.append(f"    {r.estimator:6s} {r.scheme:22s} coverage {r.coverage_baseline:.4f} -> {r.coverage_ours:.4f}, "
                           f"width {r.mean_interval_width_baseline:.4g} -> {r.mean_interval_width_ours:.4g}, "
                           f"rmse {r.rmse_baseline:.6g} -> {r.rmse_ours:.6g}")
    return out


# --------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help=f"baseline commit (default {BASELINE})")
    parser.add_argument("--baseline-tree", type=Path, help="an existing checkout of the baseline commit")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--baseline-cases", help="cases also run at the baseline (default: all of --cases)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", type=Path, help="folder for inputs, caches and fit outputs (default: temporary)")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    for c in cases:
        if c not in CASES:
            parser.error(f"unknown case {c!r}; choose from {', '.join(CASES)}")
    baseline_cases = cases if args.baseline_cases is None else [c for c in args.baseline_cases.split(",") if c]
    work = args.work or Path(tempfile.mkdtemp(prefix="xltstats-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    made_tree = None
    if baseline_cases:
        tree = args.baseline_tree
        if tree is None:
            made_tree = tree = work / f"baseline-{args.baseline}"
            if tree.exists():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), args.baseline],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours_commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True).stdout.strip())
    print(f"baseline {args.baseline} vs ours {ours_commit}{' (with uncommitted changes)' if dirty else ''}; "
          f"{os.cpu_count()} CPUs; load average {_load()}", flush=True)
    sides = {"ours": (REPO, work / "cache-ours")}
    if baseline_cases:
        sides["baseline"] = (tree, work / "cache-baseline")
    try:
        for name, (side_tree, cache) in sides.items():
            warm_up(side_tree, cache)
        results = []
        for case in cases:
            arguments = case_arguments(case, work)
            for repeat in range(args.repeats):
                for side in (["baseline"] if case in baseline_cases else []) + ["ours"]:
                    side_tree, cache = sides[side]
                    r = run_fit(side_tree, cache, arguments, work / "out" / side / case)
                    results.append({"case": case, "side": side, "repeat": repeat,
                                    **{k: v for k, v in r.items() if k != "lines"}})
                    stages = "  ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
                    print(f"{case:15s} {side:8s} #{repeat + 1}: wall {r['wall_s']:6.1f} s  cpu {r['cpu_s']:6.1f} s  "
                          f"peak {r['peak_rss_gib']:.2f} GiB | {stages}", flush=True)
        print(f"\nmedians over {args.repeats} run(s); ratio = baseline / ours (load average now {_load()})")
        frame = pd.DataFrame(results)
        for case in cases:
            part = frame[frame["case"] == case]
            med = {side: part[part["side"] == side][["wall_s", "cpu_s", "peak_rss_gib"]].median()
                   for side in ("baseline", "ours") if (part["side"] == side).any()}
            stages_of = {side: pd.DataFrame(list(part[part["side"] == side]["stages"])).median()
                         for side in med}
            line = f"{case:15s} ours wall {med['ours']['wall_s']:6.1f} s, cpu {med['ours']['cpu_s']:6.1f} s, " \
                   f"peak {med['ours']['peak_rss_gib']:.2f} GiB"
            if "baseline" in med:
                b, o = med["baseline"], med["ours"]
                line += (f" | baseline wall {b['wall_s']:6.1f} s, cpu {b['cpu_s']:6.1f} s, peak {b['peak_rss_gib']:.2f} GiB"
                         f" | ratio wall {b['wall_s'] / o['wall_s']:.2f}x, cpu {b['cpu_s'] / o['cpu_s']:.2f}x")
            print(line)
            for stage in stages_of["ours"].index:
                text = f"    {stage:10s} ours {stages_of['ours'][stage]:6.1f} s"
                if "baseline" in stages_of and stage in stages_of["baseline"].index:
                    bs = stages_of["baseline"][stage]
                    text += f"  baseline {bs:6.1f} s  ratio {bs / max(stages_of['ours'][stage], 1e-9):.2f}x"
                print(text)
        print("\noutput tables, baseline vs ours (last repeat):")
        for case in cases:
            if case not in baseline_cases:
                continue
            diff = compare_outputs(work / "out" / "baseline" / case, work / "out" / "ours" / case)
            print(f"{case}: " + ("every compared table identical" if not diff else f"{len(diff)} line(s)"))
            for line in diff:
                print(line)
        if args.json:
            args.json.write_text(frame.to_json(orient="records", indent=1), encoding="utf-8")
    finally:
        if made_tree is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(made_tree)], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
