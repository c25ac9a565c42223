"""Readable names for the report's figures and LaTeX tables: features, columns and p-values.

The CSV tables keep their ``snake_case`` names (what code reads); figures and the LaTeX tables a
paper takes get ``Syntactic distance``, ``SE``, ``95% CI low``.  :func:`format_p` writes p-values as
journals do: ``< 0.001`` below that, else three significant digits.
"""
from __future__ import annotations

import math
import re

# Features and columns whose name does not read well with underscores turned into spaces.
NAMES = {
    "ldnd": "LDND (lexical distance)",
    "char_ngram_similarity": "Character n-gram similarity",
    "same_script": "Same script",
    "same_language": "Same language",
    "source_pretrain_size": "Source pre-training size",
    "target_pretrain_size": "Target pre-training size",
    "source_pretrain_share": "Source pre-training share",
    "target_pretrain_share": "Target pre-training share",
    "target_in_pretraining": "Target in pre-training",
    "transfer_dataset_size": "Transfer data size",
    "target_dataset_size": "Target data size",
    "transfer_target_size_ratio": "Transfer/target size ratio",
    "n_source_examples": "Source examples",
    "n_target_examples": "Target examples",
    "n_predicted": "n predicted",
    "uriel_genetic": "URIEL genetic",
    "uriel_syntactic": "URIEL syntactic",
    "uriel_featural": "URIEL featural",
    "uriel_phonological": "URIEL phonological",
    "uriel_inventory": "URIEL inventory",
    "uriel_geographic": "URIEL geographic",
    # columns of the result tables
    "term": "Term",
    "estimate": "Estimate",
    "std_error": "SE",
    "statistic": "Statistic",
    "p_value": "p",
    "df": "df",
    "conf_low": "95% CI low",
    "conf_high": "95% CI high",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
    "r2_marginal": "Marginal R²",
    "r2_conditional": "Conditional R²",
    "r2_drop": "R² drop",
    "vif": "VIF",
    "max_abs_r": "Max |r|",
    "aic": "AIC",
    "bic": "BIC",
    "aic_change": "AIC change",
    "chisq": "χ²",
    "sd": "SD",
    "n": "n",
    "(intercept)": "Intercept",
    "conf_low_profile": "Profile 95% CI low",
    "conf_high_profile": "Profile 95% CI high",
    "f_p_value": "F-test p",
    "wald_p_value": "Wald p",
    "f_statistic": "F",
    "f_df1": "F df1",
    "f_df2": "F df2",
    "n_features": "No. of features",
    "n_queries": "Queries",
    "top1_accuracy": "Top-1 accuracy",
    "mean_top1_regret": "Mean top-1 regret",
    "log_likelihood": "Log-likelihood",
    "loglik_full": "Log-likelihood (full)",
    "loglik_reduced": "Log-likelihood (reduced)",
    "mean_ndcg_at_3": "Mean NDCG@3",
    "se_ndcg_at_3": "SE NDCG@3",
    "gbt": "GBT",
    "lambdarank": "LambdaRank",
    "lambdarank_mixed": "LambdaRank (mixed)",
    "ran_pars": "Random",
}
_ACRONYMS = {"sd": "SD", "se": "SE", "ci": "CI", "r2": "R²", "ndcg": "NDCG", "aic": "AIC", "bic": "BIC",
             "ols": "OLS", "rmse": "RMSE", "mae": "MAE", "uriel": "URIEL", "pos": "POS", "ner": "NER",
             "cv": "CV", "vif": "VIF", "lr": "LR", "mt": "MT", "id": "ID"}


def readable(name) -> str:
    """``syntactic_distance`` -> ``Syntactic distance``; known names from :data:`NAMES`; a name
    that is not snake_case (``Intercept``, ``C(x)[T.a]``) is kept."""
    text = str(name)
    if text.lower() in NAMES:
        return NAMES[text.lower()]
    parameter = re.fullmatch(r"(var|sd|cov|cor)__(.+)", text)  # a variance parameter, as broom.mixed names it
    if parameter:
        kind, of = parameter.groups()
        return f"{ {'var': 'Var', 'sd': 'SD', 'cov': 'Cov', 'cor': 'Cor'}[kind]}({of})"
    if not re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", text):
        return text
    words = [_ACRONYMS.get(w, w) for w in text.split("_")]
    first = words[0]
    words[0] = first if first in _ACRONYMS.values() else first[:1].upper() + first[1:]
    return " ".join(words)


P_COLUMNS = ("p_value", "p-value", "pvalue", "p", "pr(>|t|)", "pr(>|z|)", "pr(>chisq)")


def is_p_column(name) -> bool:
    text = str(name).lower()
    return text in P_COLUMNS or text.startswith("p_value") or text.endswith("_p_value")


def format_p(value) -> str:
    """``< 0.001`` below 0.001, else three significant digits (``0.0123``, ``0.456``, ``1``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if math.isnan(value):
        return "–"
    if value < 0.001:
        return "< 0.001"
    return f"{value:.3g}"
