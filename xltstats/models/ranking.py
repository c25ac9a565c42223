"""Ranking source (transfer) languages for a target language, evaluated with NDCG@k as in LangRank.

Definitions, documented once:

* A **query** is one target language (per task when ``query=("task", "target")``); its candidates are the
  source languages with an observed score. Scores of repeated runs (seeds) are averaged first.
* **Relevance** follows LangRank (Lin et al., 2019; the ``Accuracy level`` column of its tables): the
  candidates are ranked by their observed score (rank 1 = best, ties share the best rank) and a candidate
  of rank r among n gets relevance ``n + 1 - r``: the best source gets n, the worst 1.
* **NDCG@k** = DCG@k / ideal DCG@k with ``DCG@k = sum_{i<=k} gain(rel_i) / log2(i + 1)`` over the top k
  of the predicted order; ``gain`` is linear (``rel``, default) or exponential (``2^rel - 1``; with 50+
  candidates this only rewards the single best source). Predicted ties are broken by the candidate's
  name, so the result is deterministic.
* :func:`rank_sources` evaluates, leave-one-target-out (every query of the held-out target is predicted
  from models fitted on the other targets): regression models from :mod:`xltstats.models.validation`
  (OLS, crossed mixed model, ...) ranking by predicted score; the **source mean** baseline (rank by the
  source's mean score on the training targets); and a **LambdaRank** baseline (LightGBM ``LGBMRanker``,
  queries = targets, labels = the relevance above, linear label gains to match the metric,
  deterministic single-threaded training).
* With ``select=True`` three more methods: **lambdarank_mixed**, LambdaRank on the same features plus
  the crossed mixed model's score for a target it has not seen (fixed part plus the source's BLUP),
  cross-fitted: a training row's value comes from the mixed model fitted without its target (the inner
  folds below), a held-out row's from the mixed model of the whole training fold; **ensemble**, the
  mean within each query of the normalised ranks (rank 1 -> 1, last -> 0) given by the mixed model
  (the first regression estimator when there is none) and by LambdaRank; and **best**, the ranker chosen per held-out fold by an inner
  cross-validation on the training targets only: the training targets are split into ``inner_folds``
  groups (:func:`~xltstats.models.validation.group_splits`), every candidate (each regression
  estimator, LambdaRank, lambdarank_mixed, ensemble) is fitted without a group and ranks its targets,
  and the candidate with the highest mean NDCG@k over those inner queries ranks the held-out target
  -- unless that candidate beats LambdaRank by no more than one standard error of their paired
  per-query NDCG difference, in which case the anchor LambdaRank is kept (the one-standard-error
  rule: with few training targets the inner estimates are noisy, and a choice among six rankers by
  their inner means alone follows the noise). The held-out target is never used to choose; the choice of every
  fold is in :attr:`RankingResults.selection`. One approximation, the usual one of stacking: in the
  inner evaluation of lambdarank_mixed, the mixed-model feature of its training rows comes from the
  same inner folds, so models that saw the inner held-out targets made those features; this can only
  favour lambdarank_mixed in the choice, not the outer NDCG, which every method earns on targets
  nothing was fitted on.
* **Direction.** With ``higher_is_better=False`` (a declared lower-is-better metric, see
  :mod:`xltstats.results.metrics`) every method works on the negated score: relevance, NDCG, LambdaRank's
  labels, the regression models' order and the source mean all rank the lowest score first, and the
  regret is how much higher the chosen source's score is than the best one's.  The results show
  scores in the metric's own units (the ``observed`` column and the regression methods'
  ``*_score``), those clipped to the metric's range when ``scale`` is given; the order is the one of
  the unclipped predictions (clipping would tie the candidates past a bound).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xltstats.errors import InputError

__all__ = ["relevance_from_scores", "ndcg_at_k", "rank_sources", "RankingResults", "LambdaRankBaseline",
           "rank_candidates", "normalised_ranks", "ranking_estimators",
           "langrank_features"]


def relevance_from_scores(scores) -> np.ndarray:
    """LangRank relevance: ``n + 1 - rank`` with rank 1 for the highest score (ties share the best rank)."""
    scores = pd.Series(np.asarray(scores, float))
    rank = scores.rank(ascending=False, method="min").to_numpy()
    return (len(scores) + 1 - rank).astype(int)


def _order(predicted, names=None) -> np.ndarray:
    predicted = np.asarray(predicted, float)
    names = np.arange(len(predicted)).astype(str) if names is None else np.asarray(names, dtype=str)
    keys = np.where(np.isnan(predicted), -np.inf, predicted)
    return np.lexsort((names, -keys))


def ndcg_at_k(relevance, predicted, k: int = 3, gain: str = "linear", names=None) -> float:
    """NDCG@k of the order given by ``predicted`` (descending) against graded ``relevance``."""
    relevance = np.asarray(relevance, float)
    if gain == "linear":
        gains = relevance
    elif gain == "exponential":
        gains = np.power(2.0, relevance) - 1
    else:
        raise InputError(f"gain must be 'linear' or 'exponential', not {gain!r}")
    k = min(k, len(relevance))
    discount = 1 / np.log2(np.arange(2, k + 2))
    dcg = float(gains[_order(predicted, names)[:k]] @ discount)
    ideal = float(np.sort(gains)[::-1][:k] @ discount)
    return dcg / ideal if ideal > 0 else float("nan")


class LambdaRankBaseline:
    """LightGBM LambdaRank on the pair features; queries are given by ``query`` columns."""

    def __init__(self, features, query=("target",), n_estimators: int = 200, learning_rate: float = 0.05,
                 num_leaves: int = 15, min_child_samples: int = 5, seed: int = 0, k: int = 3):
        self.features = list(features)
        self.query = list(query)
        self.params = dict(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                           min_child_samples=min_child_samples)
        self.seed = seed
        self.k = k

    def fit(self, data: pd.DataFrame) -> "LambdaRankBaseline":
        import copy

        import lightgbm

        fitted = copy.copy(self)
        # rows without a relevance (a target's own in-language rows) are not ranked
        frame = data.dropna(subset=["relevance"])
        frame = frame.sort_values([*self.query, "source"], kind="stable").reset_index(drop=True)
        labels = frame["relevance"].to_numpy(int)
        sizes = frame.groupby(self.query, sort=False).size().to_numpy()
        fitted.model_ = lightgbm.LGBMRanker(
            objective="lambdarank", **self.params, random_state=self.seed, deterministic=True, num_threads=1,
            force_row_wise=True, verbose=-1, label_gain=list(range(int(labels.max()) + 1)),
            lambdarank_truncation_level=max(self.k, 10))
        fitted.model_.fit(frame[self.features].to_numpy(float), labels, group=sizes)
        return fitted

    def score(self, data: pd.DataFrame) -> np.ndarray:
        return self.model_.predict(data[self.features].to_numpy(float))


def langrank_features(data: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A LangRank table with LangRank's own ranking features added: log dataset sizes, the six URIEL
    distances, and the overlaps and TTR distance the table has."""
    data = data.assign(log_transfer_size=np.log(data["transfer_dataset_size"]),
                       log_target_size=np.log(data["target_dataset_size"]))
    feats = ["log_transfer_size", "log_target_size", "uriel_genetic", "uriel_syntactic",
             "uriel_featural", "uriel_phonological", "uriel_inventory", "uriel_geographic"]
    feats += [c for c in ("word_overlap", "entity_overlap", "ttr_distance") if c in data.columns]
    return data, feats


def ranking_estimators(features, mixed_formula: str | None = None, response: str = "score", seed: int = 0,
                       hybrid: bool = True) -> dict:
    """The regression estimators of :func:`xltstats.models.validation.default_estimators` as rankers
    (every model the package predicts with, the hybrid included once it is there), without the mean
    baseline (:func:`rank_sources` has its own source mean) and with the trees uncalibrated: a ranking
    uses the point predictions only, so the conformal calibration boosters would be wasted."""
    import copy

    from xltstats.models.validation import GradientBoostingEstimator, default_estimators

    out = {}
    for name, est in default_estimators(features, mixed_formula, response=response, seed=seed, hybrid=hybrid).items():
        if name == "mean":
            continue
        if isinstance(est, GradientBoostingEstimator) and est.interval == "conformal":
            est = copy.copy(est)
            est.calibration = "outer"
        out[name] = est
    return out


def rank_candidates(model, candidates: pd.DataFrame, column: str = "predicted_score") -> pd.DataFrame:
    """Candidates sorted best first by a fitted model's predictions (``predict`` method), with ``rank``."""
    predicted = np.asarray(model.predict(candidates), float)
    out = candidates.copy()
    out[column] = predicted
    names = out["source"].astype(str).to_numpy() if "source" in out else None
    out = out.iloc[_order(predicted, names)].reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


@dataclass
class RankingResults:
    """Per-candidate predictions and per-query NDCG@k of every ranking method."""

    k: int
    query: list
    candidates: pd.DataFrame   # one row per query x source x method
    gain: str = "linear"
    #: with ``select``: per held-out fold, the inner-CV NDCG@k of every candidate and the one chosen
    selection: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: False: the lowest score is the best; ``candidates`` then hold negated scores (see the module docstring)
    higher_is_better: bool = True
    #: the methods whose ``predicted`` is a predicted score (not a ranker's unitless score)
    score_methods: tuple = ()
    scale: object = None  # a ScoreScale: the shown scores are clipped to its range

    def table(self) -> pd.DataFrame:
        """Every candidate of every query with observed score, relevance, and each method's score and rank
        (scores in the metric's units; the regression methods' clipped to its range)."""
        candidates = self.candidates
        if not self.higher_is_better or self.scale is not None:
            sign = 1.0 if self.higher_is_better else -1.0
            scored = candidates["method"].isin(list(self.score_methods)).to_numpy()
            predicted = candidates["predicted"].to_numpy(float).copy()
            predicted[scored] = sign * predicted[scored]
            if self.scale is not None:
                predicted[scored] = self.scale.clip_values(predicted[scored])
            candidates = candidates.assign(observed=sign * candidates["observed"], predicted=predicted)
        wide = candidates.pivot_table(index=[*self.query, "source", "observed", "relevance"], columns="method",
                                           values=["predicted", "predicted_rank"], aggfunc="first")
        wide.columns = [f"{m}_{'score' if v == 'predicted' else 'rank'}" for v, m in wide.columns]
        wide = wide.reset_index().sort_values([*self.query, "relevance", "source"], ascending=[True] * len(self.query)
                                              + [False, True], kind="stable")
        return wide.reset_index(drop=True)

    def per_query(self) -> pd.DataFrame:
        """NDCG@k and whether the top prediction was the best source, per query and method."""
        rows = []
        for (method, *key), g in self.candidates.groupby(["method", *self.query], sort=True):
            names = g["source"].astype(str).to_numpy()
            best = g["observed"].max()
            top = g.iloc[_order(g["predicted"].to_numpy(), names)[0]]
            rows.append({"method": method, **dict(zip(self.query, key)), "n_candidates": len(g),
                         f"ndcg_at_{self.k}": ndcg_at_k(g["relevance"], g["predicted"], self.k, self.gain, names),
                         "top1_correct": bool(top["observed"] == best), "top1_source": top["source"],
                         "top1_regret": float(best - top["observed"])})
        return pd.DataFrame(rows)

    def evaluation(self) -> pd.DataFrame:
        """Mean NDCG@k (with its SE over queries), top-1 accuracy and mean regret per method."""
        per = self.per_query()
        col = f"ndcg_at_{self.k}"
        rows = []
        for method, g in per.groupby("method", sort=True):
            rows.append({"method": method, "n_queries": len(g), f"mean_{col}": float(g[col].mean()),
                         f"se_{col}": float(g[col].std(ddof=1) / math.sqrt(len(g))) if len(g) > 1 else float("nan"),
                         "top1_accuracy": float(g["top1_correct"].mean()), "mean_top1_regret": float(g["top1_regret"].mean())})
        return pd.DataFrame(rows).sort_values(f"mean_{col}", ascending=False, kind="stable").reset_index(drop=True)

    def summary(self) -> str:
        return (f"source-language ranking, leave-one-target-out, NDCG@{self.k} (LangRank relevance, {self.gain} gain)\n"
                + self.evaluation().to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def rank_sources(data: pd.DataFrame, features, k: int = 3, seed: int = 0, estimators: dict | None = None,
                 query=None, response: str = "score", lambdarank: bool = True, source_mean: bool = True,
                 gain: str = "linear", min_candidates: int = 2, lambdarank_estimators: int = 200,
                 max_folds: int | None = None, mixed_formula: str | None = None,
                 exclude_self: bool = True, progress=None, n_jobs: int = 1, select: bool = False,
                 inner_folds: int = 3, fold_models=None, higher_is_better: bool = True, scale=None
                 ) -> RankingResults:
    """Leave-one-target-out ranking of source languages (see the module docstring).

    ``estimators``: regression estimators (name -> object with ``fit``/``predict_interval``, see
    :mod:`xltstats.models.validation`); default: OLS on ``features``, plus the crossed mixed model
    ``mixed_formula`` when given (a held-out target gets a random effect of 0, so the mixed model
    ranks by the features plus each source's estimated effect). ``query`` columns define the
    queries (must include ``target``; default: ``model`` and ``task`` when they take several values, then
    ``target``); queries with fewer than ``min_candidates`` sources are skipped. ``max_folds``: with
    more targets than that, targets are held out in that many groups instead of one at a time (every
    target is still ranked by models that never saw it; see :func:`xltstats.models.validation.group_splits`).
    ``exclude_self``: a target is not a candidate source for itself (its in-language rows still train
    the models, but are neither ranked nor scored by NDCG). ``progress``: called with each held-out
    fold's label when it is done (see :meth:`xltstats.progress.Progress.counter`). ``n_jobs`` folds run
    at once in threads (LightGBM and BLAS release the GIL); the result is the same for any value.
    ``select``: add lambdarank_mixed, ensemble and the inner-CV choice ``best`` (``inner_folds``
    groups of training targets; needs ``lambdarank``), as the module docstring says.
    ``fold_models``: the :attr:`~xltstats.models.validation.CVResults.fold_models` of a
    leave-one-target-out cross-validation (``keep_models=True``); a held-out fold whose targets and
    training rows (keys and response) are exactly one of those folds' predicts with that fold's
    fitted estimators where they are configured as ``estimators`` are, instead of fitting them again
    (the fits are the same up to the order of the training rows).
    ``higher_is_better=False``: the lowest score is the best source; ``scale`` (a
    :class:`~xltstats.results.metrics.ScoreScale`): the table's scores clipped to its range (see the module docstring).
    """
    from xltstats.models.validation import MeanBaseline, MixedEstimator, OLSEstimator, group_splits

    features = list(features)
    if query is None:
        query = [c for c in ("model", "task") if c in data.columns and data[c].nunique() > 1] + ["target"]
    query = [query] if isinstance(query, str) else list(query)
    if "target" not in query:
        raise InputError("query must include 'target' (targets are held out one at a time)")
    if select and not lambdarank:
        raise InputError("select=True chooses among the regression models and LambdaRank; it needs lambdarank=True")
    if select and inner_folds < 2:
        raise InputError(f"inner_folds must be at least 2, not {inner_folds}")
    missing = [c for c in [*query, "source", response, *features] if c not in data.columns]
    if missing:
        raise InputError(f"missing column(s) {missing} for ranking", column=missing[0])
    frame = data.dropna(subset=[response]).copy()
    frame[response] = frame[response].astype(float)
    # average repeated runs; features are per pair (and per query) so 'first' keeps them
    agg = {response: "mean", **{f: "first" for f in features}}
    frame = frame.groupby([*query, "source"], sort=True, as_index=False, dropna=False).agg(agg)
    if not higher_is_better:  # every method ranks the negated score (undone in RankingResults.table)
        frame[response] = -frame[response]
    candidate = (frame["source"].astype(str) != frame["target"].astype(str)) if exclude_self else \
        pd.Series(True, index=frame.index)
    sizes = candidate.groupby([frame[q] for q in query]).transform("sum")
    keep = (sizes >= min_candidates).to_numpy()
    frame, candidate = frame[keep].reset_index(drop=True), candidate[keep].reset_index(drop=True)
    if frame.loc[candidate, "target"].nunique() < 2:
        raise InputError("ranking needs at least two target languages with two or more candidate sources")
    frame["relevance"] = np.nan
    # relevance_from_scores per query, for all queries at once: n + 1 - rank (ties share the best rank)
    ranked_scores = frame[candidate].groupby(query, dropna=False)[response]
    frame.loc[candidate, "relevance"] = (ranked_scores.transform("size")
                                         + 1 - ranked_scores.rank(ascending=False, method="min")).astype(int)
    frame["_candidate"] = candidate.to_numpy()
    if estimators:
        estimators = dict(estimators)
    else:
        estimators = {"ols": OLSEstimator(features, response=response)}
        if mixed_formula:
            estimators["mixed"] = MixedEstimator(mixed_formula)
    stacked = next((name for name, est in estimators.items() if isinstance(est, MixedEstimator)), None)
    anchor = stacked or next(iter(estimators), None)
    rankers = _Rankers(estimators, features, query, seed, k, lambdarank_estimators, response, stacked, anchor)

    def run_fold(fold_label, test_mask):
        train, test = frame[~test_mask], frame[test_mask]
        choice = None
        if select:
            inner_scores, train = rankers.inner(train, group_splits(train["target"].to_numpy(), inner_folds, seed))
            per_query = {name: _query_ndcg(train, predicted, query, k, gain) for name, predicted in inner_scores.items()}
            chosen, margin = _choose(per_query)
            choice = {"fold": fold_label, "chosen": chosen, "margin_over_lambdarank": margin,
                      **{f"inner_ndcg_{n}": float(np.nanmean(v)) for n, v in per_query.items()}}
        reuse = _reusable(fold_models, estimators, train, test, query, response)
        scores = rankers.outer(train, test, lambdarank=lambdarank, stack=select, reuse=reuse)
        if source_mean:
            scores["source_mean"] = MeanBaseline(response=response).fit(train).predict_interval(
                test)["prediction"].to_numpy()
        if select:
            scores["best"] = scores[choice["chosen"]]
        ranked = test["_candidate"].to_numpy()
        fold_pieces = []
        for method, predicted in scores.items():
            piece = test.loc[ranked, [*query, "source", response, "relevance"]].rename(
                columns={response: "observed"})
            piece["method"] = method
            piece["predicted"] = np.asarray(predicted)[ranked]
            fold_pieces.append(piece)
        if progress is not None:
            progress(fold_label)
        return fold_pieces, choice

    splits = group_splits(frame["target"].to_numpy(), max_folds, seed)
    if n_jobs and n_jobs > 1 and len(splits) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            per_fold = list(pool.map(lambda split: run_fold(*split), splits))
    else:
        per_fold = [run_fold(*split) for split in splits]
    pieces = [piece for fold_pieces, _ in per_fold for piece in fold_pieces]  # in split order, for any n_jobs
    candidates = pd.concat(pieces, ignore_index=True)
    candidates["predicted_rank"] = predicted_ranks(candidates, ["method", *query])
    selection = pd.DataFrame([choice for _, choice in per_fold if choice is not None])
    return RankingResults(k=k, query=query, candidates=candidates, gain=gain, selection=selection,
                          higher_is_better=higher_is_better, score_methods=(*estimators, "source_mean"), scale=scale)


class _Rankers:
    """Fits every ranking method on a training fold and scores held-out rows (see rank_sources)."""

    def __init__(self, estimators, features, query, seed, k, n_estimators, response, stacked, anchor):
        self.estimators, self.features, self.query = estimators, features, query
        self.seed, self.k, self.n_estimators, self.response = seed, k, n_estimators, response
        self.stacked, self.anchor = stacked, anchor

    def _lambdarank(self, features, train, test):
        return LambdaRankBaseline(features, query=self.query, seed=self.seed, k=self.k,
                                  n_estimators=self.n_estimators).fit(train).score(test)

    def _ensemble(self, test, scores):
        parts = [normalised_ranks(test, scores[name], self.query) for name in (self.anchor, "lambdarank")]
        return np.mean(parts, axis=0)

    def outer(self, train, test, lambdarank: bool, stack: bool, reuse=None) -> dict:
        reuse = reuse or {}
        scores = {name: (reuse[name] if name in reuse else est.fit(train)).predict_interval(test)["prediction"].to_numpy()
                  for name, est in self.estimators.items()}
        if lambdarank:
            scores["lambdarank"] = self._lambdarank(self.features, train, test)
        if stack and self.stacked:
            # train carries the cross-fitted feature from inner(); held-out rows get the fold's own mixed model
            scores["lambdarank_mixed"] = self._lambdarank([*self.features, "_stack_score"], train,
                                                          test.assign(_stack_score=scores[self.stacked]))
        if stack and self.anchor:
            scores["ensemble"] = self._ensemble(test, scores)
        return scores

    def inner(self, train, splits) -> tuple[dict, pd.DataFrame]:
        """Every candidate's scores of each inner group from fits without it; ``train`` gains the
        cross-fitted mixed-model score ``_stack_score`` (the stacking feature)."""
        names = [*self.estimators, "lambdarank"]
        inner = {name: np.full(len(train), np.nan) for name in names}
        for _, mask in splits:
            scores = self.outer(train[~mask], train[mask], lambdarank=True, stack=False)
            for name in names:
                inner[name][mask] = scores[name]
        if self.stacked:
            train = train.assign(_stack_score=inner[self.stacked])
            inner["lambdarank_mixed"] = np.full(len(train), np.nan)
            for _, mask in splits:
                inner["lambdarank_mixed"][mask] = self._lambdarank([*self.features, "_stack_score"], train[~mask],
                                                                   train[mask])
        if self.anchor:
            inner["ensemble"] = self._ensemble(train, inner)
        return inner, train


_RANKING_IRRELEVANT = ("calibration", "calibration_group", "validation_group")  # no effect on point predictions


def _same_definition(a, b) -> bool:
    """Whether two unfitted estimators give the same point predictions when fitted on the same rows."""
    if type(a) is not type(b):
        return False
    try:
        return ({k: v for k, v in vars(a).items() if k not in _RANKING_IRRELEVANT}
                == {k: v for k, v in vars(b).items() if k not in _RANKING_IRRELEVANT})
    except (TypeError, ValueError):  # attributes without a plain equality
        return False


def _reusable(fold_models, estimators, train, test, query, response) -> dict:
    """name -> the fitted estimator of the cross-validation fold that held out exactly ``test``'s
    targets and was trained on exactly ``train``'s rows (the same query/source keys, each once, and
    the same response values), for the estimators configured alike (see :func:`rank_sources`)."""
    if not fold_models:
        return {}
    held = frozenset(test["target"].astype(str))
    keys = [*query, "source"]
    for models in fold_models:
        if models.test_targets != held:
            continue
        theirs = models.train_keys
        if len(theirs) != len(train) or not {*keys, response} <= set(theirs.columns):
            return {}
        mine = train[[*keys, response]].astype({k: str for k in keys}).sort_values(keys, kind="stable")
        theirs = theirs[[*keys, response]].astype({k: str for k in keys}).sort_values(keys, kind="stable")
        if theirs.duplicated(keys).any() or not (mine.to_numpy() == theirs.to_numpy()).all():
            return {}
        return {name: fitted for name, (configured, fitted) in models.estimators.items()
                if name in estimators and _same_definition(estimators[name], configured)}
    return {}


def normalised_ranks(frame: pd.DataFrame, predicted, query) -> np.ndarray:
    """Within each query: 1 for the first of :func:`_order`'s order, 0 for the last (NaN last)."""
    piece = frame[[*query, "source"]].assign(predicted=np.asarray(predicted, float), method="")
    ranks = predicted_ranks(piece.reset_index(drop=True), ["method", *query]).astype(float)
    size = piece.groupby(query, sort=False, dropna=False)["source"].transform("size").to_numpy(float)
    return np.where(size > 1, 1 - (ranks - 1) / np.maximum(size - 1, 1), 1.0)


def _query_ndcg(frame: pd.DataFrame, predicted, query, k: int, gain: str) -> np.ndarray:
    """NDCG@k of each query of ``frame`` (its candidate rows, queries in sorted order), ranked by ``predicted``."""
    ranked = frame.assign(_predicted=np.asarray(predicted, float))[frame["_candidate"].to_numpy()]
    return np.array([ndcg_at_k(g["relevance"], g["_predicted"], k, gain, g["source"].astype(str).to_numpy())
                     for _, g in ranked.groupby(query, sort=True, dropna=False)])


def _choose(per_query: dict) -> tuple[str, float]:
    """The inner-CV choice: LambdaRank unless a candidate's mean NDCG beats it by more than one
    standard error of their paired per-query difference (then the candidate with the highest mean
    among those that do). Returns the choice and its mean difference to LambdaRank."""
    anchor = per_query["lambdarank"]
    best, best_mean, best_margin = "lambdarank", float(np.nanmean(anchor)), 0.0
    for name, values in per_query.items():
        if name == "lambdarank":
            continue
        diff = values - anchor
        diff = diff[~np.isnan(diff)]
        if len(diff) < 2:
            continue
        margin, se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))
        if margin > se and float(np.nanmean(values)) > best_mean:
            best, best_mean, best_margin = name, float(np.nanmean(values)), margin
    return best, best_margin


def predicted_ranks(candidates: pd.DataFrame, by: list) -> np.ndarray:
    """Rank 1, 2, ... of each row within its ``by`` group in :func:`_order`'s order (highest
    ``predicted`` first, NaN last, ties by source name), for all groups in one sort."""
    group = candidates.groupby(by, sort=False, dropna=False).ngroup().to_numpy()
    keys = candidates["predicted"].to_numpy(float)
    keys = np.where(np.isnan(keys), -np.inf, keys)
    names = candidates["source"].astype(str).to_numpy(dtype=str)
    order = np.lexsort((names, -keys, group))
    sorted_group = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_group)) + 1]
    position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    ranks = np.empty(len(order), int)
    ranks[order] = position + 1
    return ranks
