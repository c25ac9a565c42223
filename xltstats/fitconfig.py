"""Configuration of ``python -m xltstats.fit``: the shipped defaults merged with a user's YAML."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .paths import package_data

KNOWN_KEYS = {
    "data", "variant", "seed", "features", "lexical_corpus", "tokenizer", "covariates", "groups",
    "compare", "ols", "mixed", "fewshot", "cv", "ranking", "report", "subset",
}
CV_SCHEMES = {"leave-one-target-out", "leave-one-source-out", "random"}
COV_TYPES = {"HC3", "cluster2", "nonrobust"}


def default_config() -> dict[str, Any]:
    with open(package_data("fit_default.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> dict[str, Any]:
    """The shipped defaults, merged with ``path`` (YAML) and then ``overrides``; validated."""
    config = default_config()
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror or exc}") from exc
        try:
            user = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
        if not isinstance(user, dict):
            raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(user).__name__}")
        unknown = sorted(set(user) - KNOWN_KEYS)
        if unknown:
            raise ConfigError(
                f"{path}: unknown setting(s) {', '.join(unknown)}; expected some of {', '.join(sorted(KNOWN_KEYS))}"
            )
        config = _merge(config, user)
    if overrides:
        config = _merge(config, {k: v for k, v in overrides.items() if v is not None})
    validate_config(config, source=str(path) if path else "configuration")
    return config


def validate_config(config: dict, source: str = "configuration") -> None:
    def need(cond: bool, message: str) -> None:
        if not cond:
            raise ConfigError(f"{source}: {message}")

    need(isinstance(config.get("seed"), int), f"'seed' must be an integer, got {config.get('seed')!r}")
    for key in ("features", "covariates"):
        value = config.get(key) or []
        need(isinstance(value, list) and all(isinstance(v, str) for v in value),
             f"'{key}' must be a list of column names")
    groups = config.get("groups") or {}
    need(isinstance(groups, dict) and all(isinstance(v, list) for v in groups.values()),
         "'groups' must map a group name to a list of columns")
    for pair in config.get("compare") or []:
        need(isinstance(pair, list) and len(pair) == 2 and all(p in groups for p in pair),
             f"'compare' entries must be pairs of group names from 'groups', got {pair!r}")
    cov = (config.get("ols") or {}).get("cov_type", "HC3")
    need(cov in COV_TYPES, f"'ols.cov_type' must be one of {', '.join(sorted(COV_TYPES))}, got {cov!r}")
    cv = config.get("cv") or {}
    schemes = cv.get("schemes") or []
    bad = [s for s in schemes if s not in CV_SCHEMES]
    need(not bad, f"'cv.schemes' has unknown scheme(s) {bad}; expected some of {sorted(CV_SCHEMES)}")
    need(isinstance(cv.get("k", 5), int) and cv.get("k", 5) >= 2, "'cv.k' must be an integer >= 2")
    nj = cv.get("n_jobs", "auto")
    need(nj == "auto" or (isinstance(nj, int) and not isinstance(nj, bool) and nj >= 1),
         "'cv.n_jobs' must be 'auto' or an integer >= 1")
    for section in ("cv", "ranking"):
        mf = (config.get(section) or {}).get("max_folds")
        need(mf is None or (isinstance(mf, int) and not isinstance(mf, bool) and mf >= 2),
             f"'{section}.max_folds' must be an integer >= 2, or null for one fold per language")
    report = config.get("report", True)
    need(isinstance(report, bool) or (isinstance(report, dict) and set(report) <= {"svg"}
                                      and isinstance(report.get("svg", False), bool)),
         f"'report' must be true, false or a mapping {{svg: true|false}}, got {report!r}")
    mixed = config.get("mixed") or {}
    need(mixed.get("formula") is None or isinstance(mixed.get("formula"), str),
         "'mixed.formula' must be an lme4-style formula string")
    if isinstance(mixed.get("formula"), str):
        from .models.formula import check_formula

        try:
            check_formula(mixed["formula"])  # refused here, before any data is read or evaluated
        except ConfigError as exc:
            raise ConfigError(f"{source}: 'mixed.formula': {exc}") from None
    need(config.get("lexical_corpus") in ("udhr", "pud"), "'lexical_corpus' must be udhr or pud")
    subset = config.get("subset")
    need(subset is None or isinstance(subset, dict),
         "'subset' must map column names to a value or list of values to keep")
