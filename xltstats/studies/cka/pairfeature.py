"""Does representational similarity predict transfer?  CKA as a language-pair feature.

:func:`cka_pairs` turns ``cka.csv`` (``comparison = languages``) into a pair table (CKA is symmetric,
so (a, b) and (b, a) get the same value).  :func:`cka_adds_to_uriel` joins CKA at one layer (default:
the middle one) to the zero-shot rows of a results table and asks, with the crossed mixed model and a
likelihood-ratio test (ML refits, as lme4's ``anova``), whether it explains scores beyond URIEL
distances::

    m0: score ~ <URIEL distances> + (1|source) + (1|target)
    m1: score ~ <URIEL distances> + cka + (1|source) + (1|target)

:func:`cka_score_correlation` gives, per layer, the Spearman and Pearson correlation of CKA with the
zero-shot score over the pairs.  Both use the pretrained model's CKA by default (the similarity a
model has before it sees the task).
"""
from __future__ import annotations

import warnings

import pandas as pd

from ...errors import InputError

URIEL_FEATURES = ("syntactic_distance", "genetic_distance", "geographic_distance")


def cka_pairs(cka: pd.DataFrame, *, checkpoint: str = "pretrained", kernel: str = "linear",
              debiased: bool = False) -> pd.DataFrame:
    need = {"comparison", "checkpoint", "source_lang", "target_lang", "layer", "kernel", "cka"}
    missing = sorted(need - set(cka.columns))
    if missing:
        raise InputError(f"CKA table lacks column {missing[0]!r}", column=missing[0])
    sel = cka[(cka["comparison"] == "languages") & (cka["checkpoint"] == checkpoint)
              & (cka["kernel"] == kernel)]
    if "debiased" in sel.columns:
        sel = sel[sel["debiased"].astype(str).str.lower().isin(["true"] if debiased else ["false"])]
    if sel.empty:
        raise InputError(f"no language-pair CKA for checkpoint {checkpoint!r}, kernel {kernel!r}", column="checkpoint")
    both = pd.concat([sel.rename(columns={"source_lang": "source", "target_lang": "target"}),
                      sel.rename(columns={"source_lang": "target", "target_lang": "source"})])
    return both[["source", "target", "layer", "cka"]].drop_duplicates(["source", "target", "layer"])


def _zero_shot(results: pd.DataFrame) -> pd.DataFrame:
    df = results[(results["source"] != "mul") & (results["source"] != results["target"])
                 & (results["n_target_examples"] == 0)]
    if "condition" in df.columns:
        conds = df["condition"].fillna("").astype(str)
        base = conds.isin(["", "reinit=none"])
        df = df[base]
    return df


def cka_score_correlation(results: pd.DataFrame, cka: pd.DataFrame, **kw) -> pd.DataFrame:
    from scipy import stats

    pairs = cka_pairs(cka, **kw)
    zs = _zero_shot(results).groupby(["source", "target"], as_index=False)["score"].mean()
    rows = []
    for layer, g in pairs.groupby("layer"):
        m = zs.merge(g, on=["source", "target"])
        if len(m) < 4:
            continue
        rows.append({"layer": int(layer), "n_pairs": len(m),
                     "spearman": float(stats.spearmanr(m["cka"], m["score"]).statistic),
                     "pearson": float(stats.pearsonr(m["cka"], m["score"]).statistic)})
    return pd.DataFrame(rows)


def cka_adds_to_uriel(results: pd.DataFrame, cka: pd.DataFrame, *, layer: int | None = None,
                      features=URIEL_FEATURES, pair_features: pd.DataFrame | None = None, **kw) -> dict:
    """LRT of m1 against m0 (module docstring); returns {lrt, coefficients, layer, n_rows, n_pairs, notes}."""
    from ...models import compare_mixed, fit_mixed

    pairs = cka_pairs(cka, **kw)
    layers = sorted(pairs["layer"].unique())
    layer = int(layers[len(layers) // 2]) if layer is None else int(layer)
    if layer not in layers:
        raise InputError(f"layer {layer} not in the CKA table (layers {layers[0]}..{layers[-1]})", column="layer")
    df = _zero_shot(results).merge(pairs[pairs["layer"] == layer][["source", "target", "cka"]],
                                   on=["source", "target"], how="inner")
    features = list(features)
    if pair_features is None:
        from ...features import build_pair_features

        pair_features = build_pair_features(df[["source", "target"]].drop_duplicates(), features=features)
    df = df.merge(pair_features[["source", "target", *features]], on=["source", "target"], how="left")
    df = df.dropna(subset=["score", "cka", *features])
    notes = []
    n_pairs = df[["source", "target"]].drop_duplicates().shape[0]
    if df.empty or n_pairs < 3 * (len(features) + 2):  # m1 has len(features) + 2 fixed effects
        return {"lrt": pd.DataFrame(), "coefficients": pd.DataFrame(), "layer": layer, "n_rows": len(df),
                "n_pairs": int(df[["source", "target"]].drop_duplicates().shape[0]),
                "notes": [f"too few language pairs with CKA and URIEL features ({n_pairs}; the test needs "
                          f"at least {3 * (len(features) + 2)})"]}
    df = df.copy()
    for column in [*features, "cka"]:  # standardised, so coefficients compare
        sd = df[column].std()
        df[column] = (df[column] - df[column].mean()) / (sd if sd > 0 else 1.0)
    random = " + (1|source) + (1|target)"
    f0 = "score ~ " + " + ".join(features) + random
    f1 = "score ~ " + " + ".join([*features, "cka"]) + random
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m0, m1 = fit_mixed(f0, df, reml=False), fit_mixed(f1, df, reml=False)
        lrt = compare_mixed(m0, m1)
    notes += sorted({str(w.message) for w in caught})
    coef = m1.table()
    return {"lrt": lrt.reset_index().rename(columns={"index": "model"}), "coefficients": coef, "layer": layer,
            "n_rows": len(df), "n_pairs": int(df[["source", "target"]].drop_duplicates().shape[0]),
            "formula_m0": f0, "formula_m1": f1, "notes": notes}
