"""The fit's account of ``morphology_imputation`` (Grambank gaps filled by softImpute).

:func:`imputation_tables` adds to a fit, when the option is on:

- ``tables/morphology_imputed.csv``: per language of the data, its observed and imputed Grambank
  morphological features, the mean confidence of the imputed ones, the pairs whose distance it
  filled, and the reason a language has no completed row;
- ``tables/morphology_imputed_pairs.csv``: every pair whose distance used an imputed value, with
  the distance from observed values only (NaN where there was none: the pairs it filled), the
  distance it has now, the imputed features used and their mean confidence;
- a note (console, notes, report) naming the filled pairs' languages and the rows recovered, and
  the method's parameters in the manifest (``morphology_imputation``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def imputation_tables(fit) -> None:
    """Tables, note and manifest parameters of the fit's Grambank imputation (see the module)."""
    from ..features import grambank, grambank_impute

    method = fit.config.morphology_imputation
    features = fit.design.features
    if method == "none" or "morphological_distance_imputed" not in features.columns:
        return
    imp = grambank_impute.impute_grambank(method)
    pairs = features[["source", "target", "morphological_distance", *grambank_impute.IMPUTED_COLUMNS]].copy()
    observed = grambank.morphological_pair_features(pairs["source"].tolist(), pairs["target"].tolist())
    pairs.insert(2, "observed_distance", observed["morphological_distance"])
    pairs["filled"] = pairs["observed_distance"].isna() & pairs["morphological_distance"].notna()
    used = pairs[pairs["morphological_distance_imputed"] > 0].rename(columns={
        "morphological_distance": "distance", "morphological_distance_imputed": "imputed_features",
        "morphological_distance_confidence": "mean_confidence"}).reset_index(drop=True)
    filled = set(zip(used.loc[used["filled"], "source"], used.loc[used["filled"], "target"]))

    n_features = len(grambank.morphological_features()["column"].unique())
    rows = []
    for lang in sorted(set(pairs["source"]) | set(pairs["target"])):
        code = grambank_impute.grambank_code(lang)
        n_filled = sum(1 for s, t in filled if lang in (s, t))
        if code in imp["values"]:
            gap = imp["imputed"][code]
            conf = imp["confidence"][code][gap]
            rows.append({"language": lang, "observed_features": int(n_features - gap.sum()),
                         "imputed_features": int(gap.sum()),
                         "mean_confidence": float(conf.mean()) if gap.any() else np.nan,
                         "pairs_filled": n_filled, "reason": ""})
        else:
            k = imp["too_little"].get(code)
            why = ("in neither URIEL nor Grambank" if k is None else
                   f"only {k} observed typological values (< {grambank_impute.MIN_OBSERVED}): not imputed")
            rows.append({"language": lang, "observed_features": np.nan, "imputed_features": np.nan,
                         "mean_confidence": np.nan, "pairs_filled": 0, "reason": why})
    per_language = pd.DataFrame(rows)
    fit.tables["morphology_imputed"] = per_language
    fit.tables["morphology_imputed_pairs"] = used

    data = fit.design.data
    scored = data[data["score"].notna()]
    observed_keys = set(zip(pairs.loc[pairs["observed_distance"].notna(), "source"],
                            pairs.loc[pairs["observed_distance"].notna(), "target"]))
    rows_before = int(sum(1 for k in zip(scored["source"], scored["target"]) if k in observed_keys))
    rows_after = int(scored["morphological_distance"].notna().sum()) if "morphological_distance" in scored else 0
    rows_recovered = int(sum(1 for k in zip(scored["source"], scored["target"]) if k in filled))
    undescribed = per_language.loc[(per_language["observed_features"] == 0) & (per_language["pairs_filled"] > 0),
                                   "language"].tolist()
    missing = per_language.loc[per_language["reason"] != "", "language"].tolist()
    p = imp["parameters"]
    fit.notes.append(
        f"morphology_imputation {method}: Grambank gaps filled by softImpute (shrinkage {p['shrinkage_fraction']:g} x "
        f"the largest singular value, rank {p['rank']}, held-out accuracy {p['overall_accuracy']:.3f}); "
        f"morphological_distance filled for {len(filled)} pairs, {rows_recovered} rows with a score: "
        f"{rows_before} -> {rows_after} of {len(scored)} rows have it; "
        f"{len(undescribed)} languages Grambank does not describe were imputed from URIEL alone "
        f"({', '.join(undescribed) or 'none'}); {len(used)} pairs used imputed values "
        "(tables/morphology_imputed.csv, tables/morphology_imputed_pairs.csv)"
        + (f"; still missing for {', '.join(missing)} (see the table's reason)" if missing else ""))
    fit.imputation = {**p, "pairs_filled": len(filled), "pairs_using_imputed": int(len(used)),
                      "rows_recovered": rows_recovered,
                      "rows_with_distance": [rows_before, rows_after]}
