"""Saving fitted models to ``<fit folder>/model.json`` and predicting from them later.

``model.json`` holds everything needed to predict new language pairs without the training data::

    {"format": "xltstats-model", "version": 1, "default": "mixed",
     "features": [...], "formula": "...", "config": {...},
     "models": {"ols": {...}, "mixed": {...}, "gbt": {...},
                "mixed without morphological_distance": {...}, ...},
     "nested": {"mixed": ["mixed without morphological_distance", ...], "ols": [...]},
     "best": {"model": "gbt", "scheme": "...", "rmse": ...}, "provenance": {"same_script": "builder", ...}}

``nested`` lists, per family, the sub-models fitted without some features (each entry adds its
``features``, ``dropped`` and ``nested_in``; :mod:`xltstats.models.nested` picks one per row);
``best`` is the estimator with the lowest cross-validated RMSE (``--model auto``); ``provenance``
says where each feature column came from (:func:`xltstats.pipeline.design.column_origin`). A
``gbt`` entry (:class:`~xltstats.models.portable_trees.PortableTrees`) holds LightGBM's model string (``booster``), its
``features`` and the conformal ``calibration_residuals``. A ``hybrid`` entry
(:class:`~xltstats.models.hybrid.PortableHybrid`, :meth:`~xltstats.models.hybrid.HybridEstimator.to_spec`)
holds the trees (``trees``, ``n_rounds``, ``features``), the random intercepts of ``y - F`` as a
mixed entry (``random``) and the normalised conformal ``calibration_scores``.

Each model entry has ``kind``, ``response``, the fixed-effect ``terms`` with their ``coefficients`` and
``covariance``, the ``residual_variance`` and ``df_inference`` (null: normal quantiles). OLS entries add
the standardisation ``means``/``sds`` of the features. Mixed entries add ``random``: one entry per random
term with its ``group`` (e.g. ``source``; ``a:b`` for combinations; ``mm(source, target)`` for one
effect per language that both columns load on, with weight 1 each), its ``columns`` (``(Intercept)`` or
data columns), the term's covariance matrix, each level's conditional mode (BLUP) and, when the fit
provides it, each level's conditional covariance.

Prediction from a mixed entry: ``x'beta + sum_terms z'b_level`` (``b = 0`` for a level not seen in
fitting). Variance of a new observation: ``x'V x + sigma^2 + sum_terms`` of ``z' condVar_level z`` for a
seen level and ``z' Sigma_term z`` for an unseen one (as :meth:`MixedResults.prediction_interval`).
Fixed-effect terms must be plain numeric columns, or treatment dummies written ``C(col)[T.level]`` /
``col[T.level]``; other patsy transforms are refused when saving. A mixed entry with such dummies
records ``factor_levels``: the levels seen of each factor behind them; a new row with another level
(a third ``model`` after ``C(model)`` of two) gets a missing prediction, not the reference level's.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from xltstats.errors import ConfigError, InputError
from xltstats.models._portable import LogitScale, _floats, _kind, _matrix, _SpecChecker, back_transform, numeric_column
from xltstats.models.formula import multi_membership_members
from xltstats.models.mixed._design import member_labels
from xltstats.models.portable_trees import PortableTrees, trees_spec

__all__ = ["save_model", "load_model", "model_spec", "model_document", "read_document", "portable_model",
           "PortableModel", "MODEL_FILE"]

MODEL_FILE = "model.json"
FORMAT = "xltstats-model"
VERSION = 1
_DUMMY = re.compile(r"^(?:C\((?P<c1>[^,()]+)(?:,[^()]*)?\)|(?P<c2>[A-Za-z_][A-Za-z0-9_]*))\[T\.(?P<level>.*)\]$")


def _mixed_spec(res) -> dict:
    design = getattr(res, "_design", None)
    if design is None:
        raise ConfigError("this mixed-model result cannot be saved (it has no design information)")
    data_columns = set(map(str, res.data.columns))
    for term in res.params.index:
        if term != "Intercept" and term not in data_columns and not _DUMMY.match(term):
            raise ConfigError(f"cannot save the fixed-effect term {term!r} to model.json: only numeric columns and "
                              "treatment dummies C(col)[T.level] are supported; compute the transformed column "
                              "in the data instead")
    try:
        condvar = res._conditional_cov_blocks()
    except Exception:  # noqa: BLE001 - condVar is an optional refinement; fall back to the term covariance
        condvar = [None] * len(design.terms)
    random = []
    for t, term in enumerate(design.terms):
        for col in term.column_names:
            if col != "(Intercept)" and col not in data_columns:
                raise ConfigError(f"cannot save the random-effect column {col!r} of ({term.expr} | {term.group})")
        blups = res.random_effects_array(t)
        entry = {"group": term.group, "columns": list(term.column_names),
                 "covariance": _matrix(res._term_cov[t]),
                 "levels": {str(level): _floats(blups[i]) for i, level in enumerate(term.levels)}}
        if condvar[t] is not None:
            entry["conditional_covariance"] = {str(level): _matrix(condvar[t][i]) for i, level in enumerate(term.levels)}
        random.append(entry)
    # the levels of each factor behind treatment dummies: a new row with another level has no estimate
    factors = sorted({(m.group("c1") or m.group("c2")).strip() for m in map(_DUMMY.match, res.params.index) if m})
    factor_levels = {col: sorted(map(str, pd.unique(res.data[col].astype(str)))) for col in factors
                     if col in data_columns}
    return {"kind": "mixed", "formula": res.formula, "response": res.parsed.response,
            "terms": list(res.params.index), "coefficients": _floats(res.params),
            "covariance": _matrix(res.cov_params()), "residual_variance": float(res.scale),
            "df_inference": None, "random": random, "nobs": int(res.nobs), "reml": bool(res.reml),
            "converged": bool(res.converged), "singular": bool(res.singular),
            **({"factor_levels": factor_levels} if factor_levels else {})}


def model_spec(results) -> dict:
    """The JSON-able description of a fitted OLS or mixed model."""
    if hasattr(results, "to_spec"):
        return results.to_spec()
    if hasattr(results, "variance_components") and hasattr(results, "random_effects"):
        return _mixed_spec(results)
    raise ConfigError(f"cannot save a {type(results).__name__} as a model")


def nested_name(family: str, dropped) -> str:
    """The name of the sub-model of ``family`` fitted without the features ``dropped``."""
    return f"{family} without {'+'.join(dropped)}" if dropped else family


def model_document(*, ols=None, mixed=None, gbt=None, hybrid=None, nested=None, features=None, formula=None, config=None,
                   default: str | None = None, best: dict | None = None, provenance: dict | None = None,
                   extra_models: dict | None = None, score: dict | None = None) -> dict:
    """The content of ``model.json`` (see :func:`save_model`)."""
    models = {}
    if ols is not None:
        models["ols"] = model_spec(ols)
    if mixed is not None:
        models["mixed"] = model_spec(mixed)
    if not models:
        raise ConfigError("save_model needs at least one fitted model (ols= or mixed=)")
    default = default or ("mixed" if "mixed" in models else "ols")
    if default not in models:
        raise ConfigError(f"default model {default!r} was not given")
    if features is None:
        features = models.get("ols", {}).get("features") or []
    features = list(features)
    if gbt is not None:
        models["gbt"] = trees_spec(gbt)
    if hybrid is not None:  # a fitted HybridEstimator (xltstats.models.hybrid)
        models["hybrid"] = hybrid.to_spec()
    models.update(extra_models or {})
    families = {}
    for family, subs in (nested or {}).items():
        names = []
        for subset, results in subs:
            dropped = [f for f in features if f not in subset]
            name = nested_name(family, dropped)
            spec = model_spec(results)
            spec["features"] = list(subset)
            spec["nested_in"], spec["dropped"] = family, dropped
            models[name] = spec
            names.append(name)
        families[family] = names
    document = {"format": FORMAT, "version": VERSION, "default": default, "features": features,
                "formula": formula, "config": config or {}, "models": models}
    if families:
        document["nested"] = families
    if best:
        document["best"] = best
    if provenance:
        document["provenance"] = dict(provenance)
    if score:  # the scores' range and direction (xltstats.results.metrics.ScoreScale): predictions are clipped to it
        document["score"] = dict(score)
    return document


def save_model(directory, *, document: dict | None = None, **parts) -> Path:
    """Write ``<directory>/model.json`` (atomically) and return its path.

    ``parts`` are those of :func:`model_document`: the OLS and/or mixed model (``default`` is the
    one ``load_model`` returns unless told otherwise: the mixed model when there is one), the tree
    model ``gbt``, the fitted ``hybrid`` estimator, the ``nested`` sub-models of each family (``{"mixed": [(features, results), ...]}``,
    fitted without some features, for pairs that lack them), the cross-validated ``best`` estimator,
    and the ``provenance`` of each feature column; or a ready ``document``.
    """
    from xltstats.models.tables import atomic_write_text

    document = model_document(**parts) if document is None else document
    text = json.dumps(document, indent=1, sort_keys=True, default=str, allow_nan=False) + "\n"
    path = Path(directory) / MODEL_FILE
    atomic_write_text(path, text)
    return path


def read_document(path) -> tuple[dict, Path]:
    """``model.json`` of a fit folder (or the file itself) as a checked mapping, and its path."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise InputError("no such model file (a fit folder written by `python -m xltstats.fit` has one)", file=path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start + 1:,}: {exc.reason}); model.json is "
                         "written by `python -m xltstats.fit`", file=path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the model: {exc}", file=path) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InputError(f"not an xltstats model file (expected \"format\": \"{FORMAT}\")", file=path)
    if document.get("version") != VERSION:
        raise InputError(f"model file version {document.get('version')!r} is not supported (expected {VERSION})",
                         file=path)
    models = document.get("models")
    models = {} if models is None else models
    if not isinstance(models, dict):
        raise InputError(f"key 'models' must map model names to models, got {_kind(models)}", file=path)
    document["models"] = models
    return document, path


def portable_model(document: dict, which: str | None = None, file=None):
    """Model ``which`` (default: the document's default) of a ``model.json`` mapping."""
    models = document["models"]
    which = model_name(document, which, file)
    if which not in models:
        raise InputError(f"the file has no {which!r} model; it has: {', '.join(sorted(models)) or 'none'}", file=file)
    if not isinstance(models[which], dict):
        raise InputError(f"key 'models.{which}' must be a JSON object, got {_kind(models[which])}", file=file)
    if models[which].get("kind") == "gbt":
        return PortableTrees(models[which], name=which, file=file)
    if models[which].get("kind") == "hybrid":  # its reader is built on this module's (no import circle)
        raise InputError(f"model {which!r} is a hybrid of trees and random intercepts: read it with "
                         "xltstats.models.nested.SavedModels (as python -m xltstats.predict does) or "
                         "xltstats.models.hybrid.PortableHybrid", file=file)
    return PortableModel(models[which], name=which, file=file)


def model_name(document: dict, which: str | None = None, file=None) -> str:
    """``which``, or the document's ``default`` (checked to be a name)."""
    which = which or document.get("default")
    if not isinstance(which, str):
        raise InputError(f"key 'default' must be a model name, got {_kind(which)}", file=file)
    return which


def check_document_extras(document: dict, file=None) -> None:
    """The keys beside ``models`` that predict reads: ``features``, ``nested``, ``best``, ``provenance``, ``score``."""
    def fail(key, message):
        raise InputError(f"key '{key}': {message}", file=file)

    features = document.get("features")
    if features is not None and (not isinstance(features, list) or not all(isinstance(f, str) for f in features)):
        fail("features", f"expected a list of column names, got {_kind(features)}")
    nested = document.get("nested", {})
    if not isinstance(nested, dict):
        fail("nested", f"expected an object mapping a model to its sub-models, got {_kind(nested)}")
    for family, names in nested.items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            fail(f"nested.{family}", f"expected a list of model names, got {_kind(names)}")
        for name in names:
            if name not in document["models"]:
                fail(f"nested.{family}", f"names {name!r}, which is not in 'models'")
            if not isinstance(document["models"][name], dict):
                fail(f"models.{name}", f"expected a JSON object, got {_kind(document['models'][name])}")
            sub = document["models"][name].get("features")
            if not isinstance(sub, list) or not all(isinstance(f, str) for f in sub):
                fail(f"models.{name}.features", f"expected a list of column names, got {_kind(sub)}")
    best = document.get("best")
    if best is not None and (not isinstance(best, dict) or not isinstance(best.get("model"), str)):
        fail("best", f"expected an object with the model's name under 'model', got {_kind(best)}")
    provenance = document.get("provenance", {})
    if not isinstance(provenance, dict) or not all(v in ("builder", "dataset", "pair") for v in provenance.values()):
        fail("provenance", "expected an object mapping each column to builder, dataset or pair")
    from xltstats.results.metrics import ScoreScale

    ScoreScale.from_dict(document.get("score"), file=file)


def load_model(path, which: str | None = None):
    """Read a fit folder's ``model.json`` (or the file itself) and return the chosen model
    (a :class:`PortableModel`, or :class:`PortableTrees` for ``gbt``; a ``hybrid`` entry is read by
    :class:`~xltstats.models.hybrid.PortableHybrid`)."""
    document, path = read_document(path)
    return portable_model(document, which, file=path)


class PortableModel:
    """A model read from ``model.json``: ``predict`` and ``prediction_interval`` for new rows.

    Named as the fitted results are (:class:`~xltstats.models.OLSResults`,
    :class:`~xltstats.models.MixedResults`): ``params``, ``bse``, ``cov_params()``, ``scale``,
    ``df_inference``, ``nobs``, ``formula``; predictions in a Series named ``prediction``; intervals
    with columns ``prediction``, ``se_mean``, ``se_prediction``, ``lower``, ``upper``.
    """

    def __init__(self, spec: dict, name: str = "model", file=None):
        self.name = name
        self.file = file
        needed = ["kind", "terms", "coefficients", "covariance", "residual_variance"]
        lacking = [k for k in needed if k not in spec]
        if lacking:
            raise InputError(f"key 'models.{name}.{lacking[0]}' is missing (model {name!r} lacks "
                             f"{', '.join(lacking)})", file=file)
        _SpecChecker(name, file).check(spec)
        self.spec = spec
        self.kind = spec["kind"]
        try:  # the response's transformation of a logit-scale mixed model (mixed.scale: logit), or None
            self.response_scale = None if spec.get("response_scale") is None else LogitScale.from_spec(
                spec["response_scale"])
        except ConfigError as exc:
            raise InputError(f"key 'models.{name}.response_scale': {exc}", file=file) from None
        self.terms = list(spec["terms"])
        beta = np.asarray(spec["coefficients"], float)
        cov = np.asarray(spec["covariance"], float)
        if beta.shape != (len(self.terms),) or cov.shape != (len(self.terms),) * 2:
            raise InputError(f"model {name!r}: coefficients/covariance do not match its {len(self.terms)} terms",
                             file=file)
        self._beta, self._cov = beta, cov
        self.params = pd.Series(beta, index=self.terms, name="params")
        self.bse = pd.Series(np.sqrt(np.diag(cov)), index=self.terms, name="bse")
        self.scale = float(spec["residual_variance"])
        self.df_inference = spec.get("df_inference")
        self.nobs = spec.get("nobs")
        self.formula = spec.get("formula")

    def cov_params(self) -> pd.DataFrame:
        """Covariance of the coefficients, as saved."""
        return pd.DataFrame(self._cov, index=self.terms, columns=self.terms)

    @property
    def required_columns(self) -> list[str]:
        """Data columns new rows need (features, dummy sources, random-effect groups)."""
        cols = []
        for term in self.terms:
            if term == "Intercept":
                continue
            m = _DUMMY.match(term)
            cols.append((m.group("c1") or m.group("c2")).strip() if m and self.kind == "mixed" else term)
        for entry in self.spec.get("random", []):
            cols += [c for c in entry["columns"] if c != "(Intercept)"]
            members = multi_membership_members(entry["group"])
            cols += list(members) if members else [g.strip() for g in entry["group"].split(":")]
        return list(dict.fromkeys(cols))

    @property
    def feature_columns(self) -> list[str]:
        """Numeric pair-feature columns the model uses (not grouping or categorical columns)."""
        if self.kind == "ols":
            return list(self.spec.get("features") or [t for t in self.terms if t != "Intercept"])
        cols = [t for t in self.terms if t != "Intercept" and not _DUMMY.match(t)]
        for entry in self.spec.get("random", []):
            cols += [c for c in entry["columns"] if c != "(Intercept)"]
        return list(dict.fromkeys(cols))

    def unseen_levels(self, data: pd.DataFrame) -> list[str]:
        """Per row, why the fixed factors give it no prediction ('' when they do): the levels of
        ``factor_levels`` columns the fit never saw."""
        out = [[] for _ in range(len(data))]
        for col, seen in sorted((self.spec.get("factor_levels") or {}).items()):
            if col not in data.columns:
                continue
            labels = data[col].astype(str).to_numpy()
            for r in np.flatnonzero(~pd.Series(labels).isin(seen).to_numpy()):
                out[r].append(f"{col} {labels[r]!r} was not in the fit (it saw {', '.join(seen)})")
        return ["; ".join(parts) for parts in out]

    def _numeric(self, data: pd.DataFrame, col: str) -> np.ndarray:
        return numeric_column(data, col, self.name)

    def _fixed_design(self, data: pd.DataFrame) -> np.ndarray:
        columns = []
        for term in self.terms:
            if term == "Intercept":
                columns.append(np.ones(len(data)))
                continue
            m = _DUMMY.match(term)
            if self.kind == "mixed" and m and term not in data.columns:
                col = (m.group("c1") or m.group("c2")).strip()
                if col not in data.columns:
                    raise InputError(f"new data lacks column {col!r} needed by the {self.name} model", column=col)
                labels = data[col].astype(str)
                dummy = (labels == m.group("level")).to_numpy(float)
                seen = self.spec.get("factor_levels", {}).get(col)
                if seen is not None:  # a level the fit never saw has no fixed effect: no prediction
                    dummy[~labels.isin(seen).to_numpy()] = np.nan
                columns.append(dummy)
                continue
            values = self._numeric(data, term)
            if self.kind == "ols" and self.spec.get("standardise", True):
                values = (values - self.spec["means"][term]) / self.spec["sds"][term]
            columns.append(values)
        return np.column_stack(columns) if columns else np.ones((len(data), 0))

    def fixed_design(self, data: pd.DataFrame) -> np.ndarray:
        """The fixed-effects design of new rows: ``fixed_design(data) @ params`` is the fixed part of the
        prediction and ``x' cov_params() x`` its variance (for contrasts between rows)."""
        return self._fixed_design(data)

    def random_parts(self, data: pd.DataFrame, include_random: bool = True):
        """Per row, the random effects' part of the prediction and of its variance (as :meth:`prediction_interval`)."""
        if self.kind != "mixed":
            return np.zeros(len(data)), np.zeros(len(data))
        return self._random_parts(data, include_random)

    def _random_parts(self, data: pd.DataFrame, include_random: bool):
        mean = np.zeros(len(data))
        var = np.zeros(len(data))
        for entry in self.spec.get("random", []):
            # one label per member: [source, target] for mm(source, target), each loading with
            # weight 1 (a level named by w members of a row has w^2 times its variance)
            members = np.column_stack([m.to_numpy() for m in member_labels(data, entry["group"])])
            if list(entry["columns"]) == ["(Intercept)"]:
                self._add_intercepts(entry, members, include_random, mean, var)
                continue
            z = np.column_stack([np.ones(len(data)) if c == "(Intercept)" else self._numeric(data, c)
                                 for c in entry["columns"]])
            sigma = np.asarray(entry["covariance"], float)
            full = np.einsum("ij,jk,ik->i", z, sigma, z)
            levels = entry["levels"]
            condvar = entry.get("conditional_covariance")
            for i, labels in enumerate(members):
                for label in labels:
                    weight = float(np.sum(labels == label))
                    if include_random and label in levels:
                        mean[i] += z[i] @ np.asarray(levels[label], float)
                        var[i] += weight * (z[i] @ np.asarray(condvar[label], float) @ z[i] if condvar else full[i])
                    else:
                        var[i] += weight * full[i]
        return mean, var

    @staticmethod
    def _add_intercepts(entry: dict, members: np.ndarray, include_random: bool, mean: np.ndarray,
                        var: np.ndarray) -> None:
        """:meth:`_random_parts` of a random intercept, for all rows at once: the same sums in the
        same order (with ``z = 1`` every product is exact), so the same numbers as row by row."""
        levels = entry["levels"]
        keys = list(levels)
        effect = np.array([np.asarray(levels[k], float)[0] for k in keys] or [0.0])
        condvar = entry.get("conditional_covariance")
        full = float(np.asarray(entry["covariance"], float)[0, 0])
        cond = np.array([np.asarray(condvar[k], float)[0, 0] for k in keys] or [0.0]) if condvar else None
        position = {k: i for i, k in enumerate(keys)}
        for j in range(members.shape[1]):
            labels = members[:, j]
            weight = (members == labels[:, None]).sum(axis=1).astype(float)
            codes = pd.Series(labels).map(position).to_numpy(float)
            seen = ~np.isnan(codes) & include_random
            at = np.where(seen, codes, 0).astype(np.int64)
            mean += np.where(seen, effect[at], 0.0)
            var += weight * (np.where(seen, cond[at], full) if cond is not None else full)

    def prediction_interval(self, data: pd.DataFrame, alpha: float = 0.05, include_random: bool = True) -> pd.DataFrame:
        """Prediction, its SEs and the ``1 - alpha`` interval for a new observation of each row:
        ``se_mean`` of the predicted mean (for a mixed model including the BLUPs' conditional
        variance, or the whole random-effect variance for an unseen level), ``se_prediction`` of a
        new observation (``se_mean`` and the residual variance)."""
        x = self._fixed_design(data)
        pred = x @ self._beta
        var_mean = np.einsum("ij,jk,ik->i", x, self._cov, x)
        var = var_mean + self.scale
        if self.kind == "mixed":
            extra_mean, extra_var = self._random_parts(data, include_random)
            pred = pred + extra_mean
            var = var + extra_var
            var_mean = var_mean + extra_var
        df = self.df_inference
        crit = stats.norm.ppf(1 - alpha / 2) if df is None else stats.t.ppf(1 - alpha / 2, df)
        se = np.sqrt(var)
        out = pd.DataFrame({"prediction": pred, "se_mean": np.sqrt(var_mean), "se_prediction": se,
                            "lower": pred - crit * se, "upper": pred + crit * se}, index=data.index)
        if self.response_scale is not None:  # a logit-scale mixed model (xltstats.models.bounded): on the score scale
            out = back_transform(out, self.response_scale)
        return out

    def predict(self, data: pd.DataFrame, include_random: bool = True) -> pd.Series:
        return self.prediction_interval(data, include_random=include_random)["prediction"].rename("prediction")


