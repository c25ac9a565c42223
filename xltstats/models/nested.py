"""Nested fallback models: a prediction for a pair that lacks some features, never an imputation.

A linear model (OLS or the mixed model) needs every one of its features. A fit therefore also
fits, for each family, *nested* sub-models on a subset of the features (:func:`nested_subsets`):
every subset of available features that occurs among the fit's rows, the full set without each
feature group, and (mixed models) no features at all (random effects only). Each sub-model is
fitted on the scored rows that have its features, and saved in ``model.json`` beside the full
model (:func:`xltstats.models.persist.model_document`).

:class:`SavedModels` predicts a row with the largest saved model of the family whose features the
row has (ties: the sub-model listed first, i.e. the pattern with more rows); the output says which
model predicted each row (``model_used``) and why (``model_reason``: the features it lacks). Trees
(``gbt``, and the trees of the ``hybrid``) route missing values themselves and need no sub-models. A row no saved model can
predict keeps a missing prediction, and ``model_reason`` says why.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from xltstats.errors import ConfigError, InputError

__all__ = ["nested_subsets", "reduced_formula", "SavedModels", "MAX_PATTERNS", "FAMILIES"]

#: at most this many occurring missingness patterns get their own sub-model (the most frequent)
MAX_PATTERNS = 16
#: the families ``--model`` may name (``auto`` picks one of them)
FAMILIES = ("mixed", "ols", "gbt", "hybrid")
#: the kinds whose trees route missing feature values themselves (no nested sub-models)
TREES = ("gbt", "hybrid")
OUTPUT_COLUMNS = ("prediction", "se_mean", "se_prediction", "lower", "upper", "model_used", "model_reason")


def nested_subsets(data: pd.DataFrame, used: list[str], groups: dict[str, list[str]] | None = None, *,
                   max_patterns: int = MAX_PATTERNS) -> list[tuple[str, ...]]:
    """Feature subsets (in ``used`` order, each smaller than ``used``) to fit sub-models on.

    The occurring patterns of available features among the rows of ``data`` (most frequent first,
    ties by the larger subset, then by name; at most ``max_patterns``), then ``used`` without each
    feature group of ``groups``, then the empty subset. Deterministic for the same data.
    """
    used = list(used)
    present = data[used].notna().to_numpy() if used else np.zeros((len(data), 0), bool)
    counts: dict[tuple[str, ...], int] = {}
    for row in map(tuple, present):
        pattern = tuple(c for c, has in zip(used, row) if has)
        counts[pattern] = counts.get(pattern, 0) + 1
    ranked = sorted(counts, key=lambda p: (-counts[p], -len(p), p))
    subsets = [p for p in ranked if len(p) < len(used)][:max_patterns]
    for columns in (groups or {}).values():
        subsets.append(tuple(c for c in used if c not in set(columns)))
    subsets.append(())
    return list(dict.fromkeys(s for s in subsets if len(s) < len(used)))


def reduced_formula(formula: str, dropped: list[str], columns) -> str | None:
    """``formula`` without the fixed-effect terms that are exactly a ``dropped`` column; None when
    a dropped column is still used elsewhere (an interaction, a transform, a random slope)."""
    from xltstats.models.formula import _split_top_level_plus, referenced_columns

    lhs, rhs = formula.split("~", 1)
    kept = []
    for part in _split_top_level_plus(rhs.strip()):
        body = part.lstrip("+-").strip()
        if body in dropped:
            continue
        kept.append(part if part[0] in "+-" else f"+ {part}")
    if not any("|" in p for p in kept):
        return None
    text = " ".join(kept).strip()
    reduced = f"{lhs.strip()} ~ {text[2:] if text.startswith('+ ') else text}"
    try:
        still = set(referenced_columns(reduced, pd.DataFrame(columns=list(columns))))
    except (ConfigError, InputError):
        return None
    return None if still & set(dropped) else reduced


class SavedModels:
    """Every model of a ``model.json`` document, predicting rows with the nested fallbacks."""

    def __init__(self, document: dict, file=None):
        from xltstats.models.persist import check_document_extras

        check_document_extras(document, file)
        self.document = document
        self.file = file
        self.models = document.get("models") or {}
        self.features = list(document.get("features") or [])
        self.nested = document.get("nested") or {}
        self._portable: dict = {}
        from xltstats.results.metrics import ScoreScale

        #: the scores' range and direction; predictions and bounds are clipped to the range
        self.scale = ScoreScale.from_dict(document.get("score"), file=file)

    @classmethod
    def load(cls, path) -> "SavedModels":
        from xltstats.models.persist import read_document

        document, file = read_document(path)
        return cls(document, file=file)

    @property
    def families(self) -> list[str]:
        """The families saved (of :data:`FAMILIES`)."""
        return [f for f in FAMILIES if f in self.models]

    @property
    def provenance(self) -> dict:
        return dict(self.document.get("provenance") or {})

    def resolve(self, which: str | None) -> str:
        """The family ``which`` names; ``auto`` (or None): the fit's best estimator by cross-validation
        when recorded and saved, else the mixed model, else the file's default."""
        from xltstats.models.persist import model_name

        if which in (None, "auto"):
            best = (self.document.get("best") or {}).get("model")
            if best in self.models:
                return best
            return "mixed" if "mixed" in self.models else model_name(self.document, None, self.file)
        if which not in self.models:
            raise InputError(f"the fit has no {which!r} model; it has: {', '.join(self.families) or 'none'}"
                             + ("" if which != "gbt" else " (a fit folder written before trees were saved has no "
                                                          "gbt model: refit to get one)"), file=self.file)
        return which

    def model(self, name: str):
        from xltstats.models.persist import portable_model

        if name not in self._portable:
            entry = self.models.get(name)
            if isinstance(entry, dict) and entry.get("kind") == "hybrid":
                from xltstats.models.hybrid import PortableHybrid

                self._portable[name] = PortableHybrid(entry, name=name, file=self.file)
            else:
                self._portable[name] = portable_model(self.document, name, file=self.file)
        return self._portable[name]

    def candidates(self, family: str) -> list[tuple[str, list[str]]]:
        """(name, features) of the family's full model and its sub-models, in preference order."""
        out = [(family, self.family_features(family))]
        for name in self.nested.get(family, []):
            if name in self.models:
                out.append((name, list(self.models[name].get("features") or [])))
        return out

    def family_features(self, family: str) -> list[str]:
        """The features whose absence decides the sub-model: the fit's features (the model's own for
        trees, or for a file that does not list them)."""
        full = self.model(family)
        return list(self.features) if self.features and full.kind not in TREES else list(full.feature_columns)

    def columns_needed(self, family: str) -> list[str]:
        """The feature columns a pairs table needs for ``family`` (computed when absent)."""
        return list(dict.fromkeys([*self.features, *self.model(family).feature_columns]))

    def predict(self, table: pd.DataFrame, which: str | None = "auto", alpha: float = 0.05,
                include_random: bool = True) -> pd.DataFrame:
        """``prediction``, ``se_mean``, ``se_prediction``, ``lower``, ``upper``, ``model_used`` and
        ``model_reason`` for every row of ``table`` (index kept).  With a score range in the document
        (``score``), ``prediction``, ``lower`` and ``upper`` are clipped to it (the standard errors are
        the model's) and ``attrs["clipped"]`` counts the values changed."""
        out = self._predict(table, which, alpha, include_random)
        if self.scale is None:
            return out
        out, clipped = self.scale.clip(out, ("prediction", "lower", "upper"))
        out.attrs["clipped"] = clipped
        return out

    def _predict(self, table: pd.DataFrame, which, alpha: float, include_random: bool) -> pd.DataFrame:
        family = self.resolve(which)
        full = self.model(family)
        features = self.family_features(family)
        present = table.reindex(columns=features).notna().to_numpy()
        lacking = [tuple(f for f, has in zip(features, row) if not has) for row in present]
        out = pd.DataFrame({c: np.full(len(table), np.nan) for c in OUTPUT_COLUMNS[:5]}, index=table.index)
        used = np.full(len(table), "", dtype=object)
        reason = np.full(len(table), "", dtype=object)
        if full.kind in TREES:
            out.loc[:, list(OUTPUT_COLUMNS[:5])] = full.prediction_interval(
                table, alpha=alpha, include_random=include_random).to_numpy()
            used[:] = family
            reason[:] = [f"lacks {', '.join(miss)} (the trees route missing values)" if miss else ""
                         for miss in lacking]
            return out.assign(model_used=used, model_reason=reason)
        candidates = self.candidates(family)
        best: dict[tuple, int] = {}
        for miss in dict.fromkeys(lacking):  # the largest candidate within each pattern, first on ties
            have = set(features) - set(miss)
            fits = [(len(feats), -k) for k, (_, feats) in enumerate(candidates) if set(feats) <= have]
            best[miss] = -max(fits)[1] if fits else -1
        chosen = np.array([best[miss] for miss in lacking], dtype=int)
        for k, (name, _) in enumerate(candidates):
            rows = np.flatnonzero(chosen == k)
            if not len(rows):
                continue
            part = table.iloc[rows]
            pi = self.model(name).prediction_interval(part, alpha=alpha, include_random=include_random)
            out.iloc[rows, :5] = pi[list(OUTPUT_COLUMNS[:5])].to_numpy()
            used[rows] = name
            reason[rows] = [f"lacks {', '.join(lacking[r])}" if lacking[r] else "" for r in rows]
        for r in np.flatnonzero(chosen < 0):
            reason[r] = (f"lacks {', '.join(lacking[r])}; no saved {family} model does without "
                         f"{'it' if len(lacking[r]) == 1 else 'them'}")
        unexplained = out["prediction"].isna().to_numpy() & (chosen >= 0)
        for r in np.flatnonzero(unexplained):
            model = self.model(candidates[chosen[r]][0])
            unseen = model.unseen_levels(table.iloc[[r]])[0] if hasattr(model, "unseen_levels") else ""
            reason[r] = unseen or "a value the model needs besides its features is missing"
        return out.assign(model_used=used, model_reason=reason)
