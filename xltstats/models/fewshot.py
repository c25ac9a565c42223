"""Few-shot learning curves: ``score = a + b * log(1 + n)``.

:func:`fit_fewshot` fits one curve per group (by default per ``(task, target)``; ``n`` is the number of
target-language training examples) and, per ``task``, a pooled curve with correlated random intercepts
and slopes across targets: ``score ~ log1p_n + (1 + log1p_n | target)`` (REML, with
:func:`xltstats.models.fit_mixed`; the pooled random-effect SDs are reported as ``vc_group_sd`` (intercept),
``vc_group:log1p_n_sd`` (slope) and ``vc_Residual_sd``). The grouping column is renamed ``group`` inside.

Definitions, documented once:

* **Pooled curves** (:meth:`FewShotResults.pooled_curves`): the population curve of the pooled model
  with its band, and one shrunken curve per target (fixed effects plus the target's conditional modes)
  with a band that adds the conditional variance of those modes; these exist also for targets seen at
  a single size.
* **Zero-shot score**: the curve at ``n = 0``, i.e. ``a``, with its t interval (``df = rows - 2``).
* **Confidence band**: ``a + b L ± t * sqrt(var(a) + 2 L cov(a, b) + L^2 var(b))`` with ``L = log(1 + n)``;
  it is a band for the mean curve, not for single runs.
* **Reference (in-language) score** of a group: the mean score of its rows with ``source == target``
  when there are any (at the largest ``n`` among them), otherwise the mean score at the group's largest
  ``n`` ("max-n"). ``reference_kind`` in the output says which was used. The reference is treated as
  known (its own sampling error is not propagated).
* **Data demand**: the ``n`` at which the fitted curve reaches a target score ``s`` (given directly, or
  as ``share * reference``): ``n* = exp((s - a) / b) - 1``. Its interval comes from the delta method on
  the log scale, ``L* = (s - a)/b`` with gradient ``(-1/b, -(s - a)/b^2)``, and is mapped back through
  ``exp(.) - 1`` and clipped at 0 (so it is asymmetric and never negative); or, with ``interval="bootstrap"``, from a
  parametric bootstrap of the coefficients (percentile interval). If ``s <= a`` the answer is ``n* = 0`` (``status =
  "reached_at_zero"``, the interval is still reported); if the slope is not positive the score is never reached on the curve and ``n*`` is reported as NaN with
  ``status = "not_reached"``. ``extrapolated`` flags an ``n*`` beyond the largest ``n`` observed.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from xltstats.errors import InputError

__all__ = ["fit_fewshot", "FewShotResults", "fit_curve", "data_demand", "data_demand_bootstrap"]


def fit_curve(n, score) -> dict:
    """OLS fit of ``score = a + b log1p(n)``: estimates, covariance, residual SD and R²."""
    n = np.asarray(n, float)
    y = np.asarray(score, float)
    x = np.column_stack([np.ones(len(n)), np.log1p(n)])
    rows = len(y)
    out = {"n_obs": rows, "n_sizes": int(len(np.unique(n))), "max_n": float(n.max()) if rows else np.nan}
    if rows < 3 or out["n_sizes"] < 2:
        out.update({"a": np.nan, "b": np.nan, "cov": np.full((2, 2), np.nan), "sigma": np.nan, "r2": np.nan,
                    "df": max(rows - 2, 0), "status": "too_few_sizes"})
        return out
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    resid = y - x @ beta
    df = rows - 2
    sigma2 = float(resid @ resid / df)
    tss = float(((y - y.mean()) ** 2).sum())
    out.update({"a": float(beta[0]), "b": float(beta[1]), "cov": sigma2 * xtx_inv, "sigma": float(np.sqrt(sigma2)),
                "r2": 1 - float(resid @ resid) / tss if tss > 0 else np.nan, "df": df, "status": "ok"})
    return out


def data_demand(a: float, b: float, cov: np.ndarray, target_score: float, crit: float, max_n: float = np.inf) -> dict:
    """``n`` needed to reach ``target_score`` on the curve, with a delta-method interval (log scale)."""
    if not np.isfinite(a) or not np.isfinite(b):
        return {"n_needed": np.nan, "n_lower": np.nan, "n_upper": np.nan, "status": "no_curve", "extrapolated": False}
    status = "reached_at_zero" if target_score <= a else "ok"
    if b <= 0:
        if status == "ok":
            return {"n_needed": np.nan, "n_lower": np.nan, "n_upper": np.nan, "status": "not_reached",
                    "extrapolated": False}
        return {"n_needed": 0.0, "n_lower": np.nan, "n_upper": np.nan, "status": status, "extrapolated": False}
    # when the score is already reached at n = 0 the same interval is reported (its upper end may be > 0)
    log_n = (target_score - a) / b
    grad = np.array([-1.0 / b, -(target_score - a) / b ** 2])
    se = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
    with np.errstate(over="ignore"):
        n_needed = float(max(np.expm1(log_n), 0.0))
        lower = float(max(np.expm1(log_n - crit * se), 0.0))
        upper = float(max(np.expm1(log_n + crit * se), 0.0))
    return {"n_needed": n_needed, "n_lower": lower, "n_upper": upper, "status": status,
            "extrapolated": bool(n_needed > max_n)}


def data_demand_bootstrap(a: float, b: float, cov: np.ndarray, target_score: float, alpha: float,
                          max_n: float, n_boot: int, rng: np.random.Generator) -> dict:
    """As :func:`data_demand`, with a percentile interval from ``n_boot`` draws of ``(a, b) ~ N(est, cov)``.

    A draw whose slope is not positive never reaches the score and counts as ``n = inf``; a draw whose
    intercept already reaches it counts as ``n = 0``.
    """
    point = data_demand(a, b, cov, target_score, 1.0, max_n)
    if point["status"] in ("no_curve",) or not np.all(np.isfinite(cov)):
        return {**point, "n_lower": np.nan, "n_upper": np.nan}
    draws = rng.multivariate_normal([a, b], cov, size=n_boot, method="cholesky" if np.all(np.linalg.eigvalsh(cov) > 0)
                                    else "eigh")
    da, db = draws[:, 0], draws[:, 1]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        n = np.where(target_score <= da, 0.0, np.where(db > 0, np.expm1((target_score - da) / db), np.inf))
    lower, upper = np.quantile(n, [alpha / 2, 1 - alpha / 2])
    return {**point, "n_lower": float(lower), "n_upper": float(upper)}


def _fit_pooled(sub: pd.DataFrame, response: str, group: str) -> dict:
    """Random intercept and slope model across ``group`` levels: fixed a, b and their covariance."""
    from xltstats.models.mixed import fit_mixed

    frame = pd.DataFrame({"score": sub[response].to_numpy(float), "log1p_n": np.log1p(sub["_n"].to_numpy(float)),
                          "group": sub[group].astype(str).to_numpy()})
    # warn=False and res.warnings instead of catching warnings: catch_warnings is not thread-safe
    res = fit_mixed("score ~ log1p_n + (1 + log1p_n | group)", frame, reml=True, warn=False)
    names = ["Intercept", "log1p_n"]
    cov = np.asarray(res.cov_params().loc[names, names], float)
    components = [{"term": ("group:log1p_n_sd" if str(name).endswith(":log1p_n") else f"{name}_sd"),
                   "value": float(np.sqrt(var))} for name, var in res.variance_components.items()]
    return {"a": float(res.params["Intercept"]), "b": float(res.params["log1p_n"]), "cov": cov,
            "converged": bool(res.converged), "singular": bool(res.singular), "engine": "xltstats.fit_mixed",
            "result": res,
            "variance_components": components,
            "warnings": "; ".join(sorted(set(res.warnings)))}


@dataclass
class FewShotResults:
    """Per-group and pooled few-shot curves (see the module docstring for definitions)."""

    by: list[str]
    response: str
    alpha: float
    fits: list[dict]
    pooled: dict = field(default_factory=dict)
    pool_by: list[str] = field(default_factory=list)
    interval: str = "delta"
    n_boot: int = 2000
    seed: int = 0
    group_column: str = "target"

    def _rng(self, key: dict, goal: float) -> np.random.Generator:
        # one stream per (group, goal), independent of the order in which groups are asked for
        text = repr(sorted((str(k), str(v)) for k, v in key.items())) + f"|{goal!r}"
        return np.random.default_rng([self.seed, zlib.crc32(text.encode())])

    def _crit(self, df) -> float:
        return float(stats.t.ppf(1 - self.alpha / 2, df)) if df and df > 0 else np.nan

    def table(self) -> pd.DataFrame:
        """One row per group: a, b, their SEs, zero-shot score with interval, fit quality, reference."""
        rows = []
        for f in self.fits:
            cov = f["cov"]
            se_a, se_b = float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1]))
            crit = self._crit(f["df"])
            rows.append({**f["key"], "n_obs": f["n_obs"], "n_sizes": f["n_sizes"], "max_n": f["max_n"],
                         "a": f["a"], "se_a": se_a, "b": f["b"], "se_b": se_b,
                         "b_low": f["b"] - crit * se_b, "b_high": f["b"] + crit * se_b,
                         "zero_shot": f["a"], "zero_shot_low": f["a"] - crit * se_a,
                         "zero_shot_high": f["a"] + crit * se_a, "residual_sd": f["sigma"], "r2": f["r2"],
                         "reference_score": f["reference"], "reference_kind": f["reference_kind"],
                         "status": f["status"]})
        return pd.DataFrame(rows)

    def curves(self, n_values=None, points: int = 25) -> pd.DataFrame:
        """Fitted mean curve and its confidence band at ``n_values`` (default: 0 .. max n, log spaced)."""
        rows = []
        for f in self.fits:
            if f["status"] != "ok":
                continue
            grid = np.asarray(n_values, float) if n_values is not None else \
                np.unique(np.concatenate([[0.0], np.round(np.expm1(np.linspace(0, np.log1p(f["max_n"]), points)))]))
            log_n = np.log1p(grid)
            design = np.column_stack([np.ones(len(grid)), log_n])
            fit = design @ np.array([f["a"], f["b"]])
            se = np.sqrt(np.einsum("ij,jk,ik->i", design, f["cov"], design))
            crit = self._crit(f["df"])
            for n, m, s in zip(grid, fit, se):
                rows.append({**f["key"], "n": float(n), "fit": float(m), "se": float(s),
                             "lower": float(m - crit * s), "upper": float(m + crit * s)})
        return pd.DataFrame(rows)

    def data_demand(self, shares=(0.8, 0.9, 0.95), scores=None) -> pd.DataFrame:
        """n needed to reach each ``share`` of the reference score (and each absolute score in ``scores``)."""
        rows = []
        for f in self.fits:
            crit = self._crit(f["df"])
            goals = [("share", s, s * f["reference"]) for s in (shares or [])]
            goals += [("score", s, s) for s in (scores or [])]
            for kind, value, goal in goals:
                if self.interval == "bootstrap":
                    result = data_demand_bootstrap(f["a"], f["b"], f["cov"], goal, self.alpha, f["max_n"],
                                                   self.n_boot, self._rng(f["key"], goal))
                else:
                    result = data_demand(f["a"], f["b"], f["cov"], goal, crit, f["max_n"])
                rows.append({**f["key"], "goal": kind, "goal_value": value, "target_score": goal,
                             "reference_score": f["reference"], **result})
        return pd.DataFrame(rows)

    def pooled_table(self, shares=(0.9,)) -> pd.DataFrame:
        """Pooled (random-effects) curve per ``pool_by`` group with zero-shot score and data demand."""
        crit = float(stats.norm.ppf(1 - self.alpha / 2))
        rows = []
        for key, p in self.pooled.items():
            keyd = dict(zip(self.pool_by, key))
            if "error" in p:
                rows.append({**keyd, "status": p["error"]})
                continue
            se_a, se_b = float(np.sqrt(p["cov"][0, 0])), float(np.sqrt(p["cov"][1, 1]))
            row = {**keyd, "n_groups": p["n_groups"], "n_obs": p["n_obs"], "a": p["a"], "se_a": se_a,
                   "b": p["b"], "se_b": se_b, "zero_shot_low": p["a"] - crit * se_a,
                   "zero_shot_high": p["a"] + crit * se_a, "b_low": p["b"] - crit * se_b,
                   "b_high": p["b"] + crit * se_b, "engine": p["engine"], "converged": p["converged"],
                   "singular": p["singular"], "mean_reference": p["mean_reference"], "status": "ok",
                   "warnings": p["warnings"]}
            for vc in p["variance_components"]:
                row[f"vc_{vc['term']}"] = vc["value"]
            for share in shares:
                d = data_demand(p["a"], p["b"], p["cov"], share * p["mean_reference"], crit, p["max_n"])
                row[f"n_for_{share:g}"] = d["n_needed"]
                row[f"n_for_{share:g}_low"] = d["n_lower"]
                row[f"n_for_{share:g}_high"] = d["n_upper"]
            rows.append(row)
        return pd.DataFrame(rows)

    def pooled_curves(self, n_values=None, points: int = 25, levels: bool = True) -> pd.DataFrame:
        """Curves of the pooled (random-effects) model with confidence bands, per ``pool_by`` group.

        ``level == "(population)"``: the fixed-effect curve ``a + b L`` with the band
        ``± z sqrt(x' V_ab x)``, ``x = (1, L)``, ``L = log(1 + n)``.  With ``levels``, one curve per
        target (``group``) as well: ``(a + u_0) + (b + u_1) L`` from the conditional modes (BLUPs),
        with the band ``± z sqrt(x' V_ab x + x' C x)`` where ``C`` is the conditional covariance of
        the target's random effects (lme4's ``condVar``); the covariance between the fixed-effect
        estimates and the BLUPs is ignored, as in :meth:`MixedResults.prediction_interval`.  These
        shrunken curves exist also for targets with a single training size, where no per-target
        curve can be fitted.  The point at ``n = 0`` is the predicted zero-shot score.  Normal
        quantiles; ``n_values`` defaults to 0 .. the largest ``n`` of the pooled rows, log spaced.
        """
        crit = float(stats.norm.ppf(1 - self.alpha / 2))
        frames = []
        for key, p in self.pooled.items():
            if "error" in p:
                continue
            keyd = dict(zip(self.pool_by, key))
            grid = np.asarray(n_values, float) if n_values is not None else np.unique(np.concatenate(
                [[0.0], np.round(np.expm1(np.linspace(0, np.log1p(p["max_n"]), points)))]))
            design = np.column_stack([np.ones(len(grid)), np.log1p(grid)])
            curves = [("(population)", np.array([p["a"], p["b"]]), np.zeros((2, 2)))]
            if levels:
                res = p["result"]
                blups = res.random_effects["group"][["(Intercept)", "log1p_n"]]
                condvar = res._conditional_cov_blocks()[0]
                for i, level in enumerate(blups.index):
                    extra = condvar[i] if condvar is not None else res._term_cov[0]
                    curves.append((str(level), np.array([p["a"], p["b"]]) + blups.iloc[i].to_numpy(), extra))
            for level, coef, extra in curves:
                fit = design @ coef
                se = np.sqrt(np.einsum("ij,jk,ik->i", design, p["cov"] + extra, design))
                frames.append(pd.DataFrame({**{k: [v] * len(grid) for k, v in keyd.items()},
                                            self.group_column: level, "n": grid, "fit": fit, "se": se,
                                            "lower": fit - crit * se, "upper": fit + crit * se}))
        if not frames:
            return pd.DataFrame(columns=[*self.pool_by, self.group_column, "n", "fit", "se", "lower", "upper"])
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> str:
        c = self.table()
        ok = c[c["status"] == "ok"]
        text = (f"few-shot curves {self.response} = a + b log(1+n) by {', '.join(self.by)}: "
                f"{len(ok)} of {len(c)} groups fitted; median slope b = {ok['b'].median():.4g}")
        if self.pooled:
            text += "\n" + self.pooled_table().to_string(index=False, float_format=lambda v: f"{v:.4g}")
        return text


def _reference(sub: pd.DataFrame, response: str) -> tuple[float, str]:
    if {"source", "target"} <= set(sub.columns):
        same = sub[sub["source"].astype(str) == sub["target"].astype(str)]
        if len(same):
            top = same[same["_n"] == same["_n"].max()]
            return float(top[response].mean()), "in_language"
    top = sub[sub["_n"] == sub["_n"].max()]
    return float(top[response].mean()), "max_n"


def fit_fewshot(data: pd.DataFrame, by=None, n_col: str = "n_target_examples",
                response: str = "score", pooled: bool = True, pool_by=None, group: str = "target",
                alpha: float = 0.05, interval: str = "delta", n_boot: int = 2000, seed: int = 0) -> FewShotResults:
    """Fit ``score = a + b log(1+n)`` per ``by`` group, and pooled with random effects per ``pool_by``.

    ``interval`` chooses how per-group data-demand intervals are computed: ``"delta"`` (delta method on
    the log scale) or ``"bootstrap"`` (parametric: ``n_boot`` draws of the curve's coefficients from their
    estimated normal distribution, percentile interval; ``seed`` makes it reproducible).
    ``by`` defaults to ``("task", "target")`` and ``pool_by`` to ``("task",)``, each preceded by ``model``
    when the data hold several models (curves of different models are never mixed).
    Rows with a missing ``n`` or score are ignored; a negative ``n`` is an error.
    """
    several_models = "model" in data.columns and data["model"].nunique() > 1
    if by is None:
        by = (["model"] if several_models else []) + ["task", "target"]
    if pool_by is None:
        pool_by = (["model"] if several_models else []) + ["task"]
    if interval not in ("delta", "bootstrap"):
        raise InputError(f"interval must be 'delta' or 'bootstrap', not {interval!r}")
    by = [by] if isinstance(by, str) else list(by)
    pool_by = [pool_by] if isinstance(pool_by, str) else list(pool_by or [])
    needed = [*by, n_col, response] + ([group, *pool_by] if pooled else [])
    missing = [c for c in dict.fromkeys(needed) if c not in data.columns]
    if missing:
        raise InputError(f"missing column(s) {missing} for few-shot curves", column=missing[0])
    frame = data.copy()
    frame["_n"] = pd.to_numeric(frame[n_col], errors="coerce").astype(float)
    frame[response] = pd.to_numeric(frame[response], errors="coerce").astype(float)
    negative = np.flatnonzero((frame["_n"] < 0).to_numpy())
    if len(negative):
        raise InputError(f"negative number of examples {frame['_n'].iloc[negative[0]]}", row=int(negative[0]) + 1,
                         column=n_col)
    frame = frame[frame["_n"].notna() & frame[response].notna()]
    fits = []
    for key, sub in frame.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        fit = fit_curve(sub["_n"], sub[response])
        reference, kind = _reference(sub, response)
        fits.append({"key": dict(zip(by, key)), **fit, "reference": reference, "reference_kind": kind})
    results = FewShotResults(by=by, response=response, alpha=alpha, fits=fits, pool_by=pool_by, interval=interval,
                             n_boot=n_boot, seed=seed, group_column=group)
    if pooled:
        refs = pd.DataFrame([{**f["key"], "reference": f["reference"]} for f in fits])
        groups = frame.groupby(pool_by, sort=True) if pool_by else [((), frame)]
        for key, sub in groups:
            key = key if isinstance(key, tuple) else (key,)
            n_groups = sub[group].nunique()
            if n_groups < 3 or sub["_n"].nunique() < 2:
                results.pooled[key] = {"error": "too_few_groups_or_sizes"}
                continue
            try:
                p = _fit_pooled(sub, response, group)
            except (np.linalg.LinAlgError, ValueError) as exc:
                results.pooled[key] = {"error": f"fit_failed: {exc}"}
                continue
            mask = np.ones(len(refs), bool)
            for col, value in zip(pool_by, key):
                if col in refs.columns:
                    mask &= (refs[col] == value).to_numpy()
            p.update({"n_groups": int(n_groups), "n_obs": int(len(sub)), "max_n": float(sub["_n"].max()),
                      "mean_reference": float(refs.loc[mask, "reference"].mean())})
            results.pooled[key] = p
    return results
