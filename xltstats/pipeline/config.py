"""``FitConfig``: the settings of a fit, as dataclasses, and the one home of every default.

A configuration comes from YAML (``--config FILE``, merged over the defaults: mappings merge key
by key, lists and scalars replace) or is built in Python::

    from xltstats.pipeline import FitConfig
    config = FitConfig(data="langrank-pos", seed=1).replace(ols={"cov_type": "HC3"})

Every value is checked when the configuration is made; a problem is a :class:`ConfigError` that
names the file and the key (``my.yaml: 'ols.n_boot' must be an integer >= 1, got 'many'``).
``xltstats/data/fit_default.yaml`` documents the same defaults with comments; a test checks that
it and the dataclasses agree.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError

AUTO = "auto"
MAX_SEED = 2**32 - 1  # numpy's legacy seeding (RandomState) takes seeds below 2**32
CV_SCHEMES = ("leave-one-target-out", "leave-one-source-out", "random", "leave-one-language-out")
DEFAULT_CV_SCHEMES = ("leave-one-target-out", "leave-one-source-out", "random")
#: What the schemes of ordered pairs become for unordered ones (see xltstats.pipeline.pairs).
UNORDERED_CV_SCHEMES = ("leave-one-language-out", "random")
COV_TYPES = ("HC3", "cluster2", "dyadic", "nonrobust")
PAIRS = ("auto", "ordered", "unordered")
LEXICAL_CORPORA = ("udhr", "pud")
MIXED_SCALES = ("gaussian", "logit")

DEFAULT_FEATURES = (
    "syntactic_distance", "phonological_distance", "inventory_distance", "genetic_distance",
    "geographic_distance", "morphological_distance", "char_ngram_similarity", "target_pretrain_share",
    "source_pretrain_share",
)
DEFAULT_COVARIATES = (
    "same_language", "same_script", "source_pretrain_size", "target_pretrain_size", "target_in_pretraining",
    "ldnd", "word_overlap", "subword_overlap", "transfer_dataset_size",
)
DEFAULT_GROUPS = {
    "syntax": ("syntactic_distance",),
    "morphology": ("morphological_distance",),
    "phonology": ("phonological_distance", "inventory_distance"),
    "lexical": ("ldnd", "char_ngram_similarity", "word_overlap", "subword_overlap"),
    "genealogy_geography": ("genetic_distance", "geographic_distance"),
    "data": ("same_language", "same_script", "source_pretrain_size", "target_pretrain_size",
             "target_in_pretraining", "source_pretrain_share", "target_pretrain_share", "transfer_dataset_size"),
}
DEFAULT_COMPARE = (("syntax", "lexical"), ("morphology", "lexical"), ("phonology", "lexical"))


class _Checker:
    """Builds the messages: ``SOURCE: 'key' must be ..., got VALUE``."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, message: str, value: Any = dataclasses.MISSING):
        got = "" if value is dataclasses.MISSING else f", got {_show(value)}"
        raise ConfigError(f"{self.source}: '{key}' {message}{got}")

    def mapping(self, key: str, value) -> dict:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(key, "must be a mapping of settings", value)
        return dict(value)

    def keys(self, key: str, value: dict, known) -> None:
        unknown = sorted(set(map(str, value)) - set(known))
        if unknown:
            where = f"'{key}' has " if key else ""
            raise ConfigError(f"{self.source}: {where}unknown setting(s) "
                              f"{', '.join(repr(k) if key else k for k in unknown)}; "
                              f"expected some of {', '.join(sorted(known))}")

    def integer(self, key: str, value, *, minimum: int | None = None, maximum: int | None = None,
                allow_none: bool = False) -> int | None:
        if value is None and allow_none:
            return None
        if (isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum)
                or (maximum is not None and value > maximum)):
            bound = f" >= {minimum}" if minimum is not None else ""
            bound += f" and <= {maximum}" if maximum is not None else ""
            self.fail(key, f"must be an integer{bound}" + (" or null" if allow_none else ""), value)
        return int(value)

    def boolean(self, key: str, value, *, allow_auto: bool = False):
        if isinstance(value, bool) or (allow_auto and value == AUTO):
            return value
        self.fail(key, "must be true or false" + (" or auto" if allow_auto else ""), value)

    def choice(self, key: str, value, choices) -> str:
        if not isinstance(value, str) or value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}", value)
        return value

    def text(self, key: str, value, *, allow_none: bool = True) -> str | None:
        if value is None and allow_none:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, "must be a non-empty string" + (" or null" if allow_none else ""), value)
        return value

    def names(self, key: str, value) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)):
            self.fail(key, "must be a list of column names", value)
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                self.fail(f"{key}[{index}]", "must be a column name", item)
        return tuple(value)


def _show(value) -> str:
    return repr(value.item() if hasattr(value, "item") else value)


@dataclass(frozen=True)
class OLSConfig:
    cov_type: str = "cluster2"  # HC3, cluster2 (two-way clustered by source and target), dyadic, nonrobust
    standardise: bool = True
    n_boot: int = 500  # cluster-bootstrap draws for the group-against-group tests
    # cluster2 with fewer sources or targets than this falls back to HC3, with a note (Cameron & Miller 2015)
    min_clusters: int = 10

    def __post_init__(self):
        check = _Checker("configuration")
        check.choice("ols.cov_type", self.cov_type, COV_TYPES)
        check.integer("ols.min_clusters", self.min_clusters, minimum=2)
        check.boolean("ols.standardise", self.standardise)
        check.integer("ols.n_boot", self.n_boot, minimum=1)


#: Denominator degrees of freedom of the mixed model's fixed-effect tests (``mixed.ddf``).
DDF_METHODS = ("satterthwaite", "kenward-roger")


@dataclass(frozen=True)
class MixedConfig:
    formula: str | None = None  # None: every used feature + random intercepts (see pipeline.factors)
    reml: bool = True
    ci_boot: int | None = None  # None: profile-likelihood intervals; a number: parametric bootstrap draws
    # grouping factors with fewer levels are fixed effects (one level: left out), with a note
    min_levels: int = 3
    ddf: str = "satterthwaite"  # denominator df of the fixed-effect t tests (or "kenward-roger")
    # gaussian: the score itself; logit: the logit of its place in the metric's range (xltstats.models.bounded)
    scale: str = "gaussian"

    def __post_init__(self):
        check = _Checker("configuration")
        check.choice("mixed.scale", self.scale, MIXED_SCALES)
        if self.formula is not None and (not isinstance(self.formula, str) or "~" not in self.formula):
            check.fail("mixed.formula", "must be an lme4-style formula string such as "
                                        "'score ~ x + (1 | source) + (1 | target)', or null", self.formula)
        if self.formula is not None:
            from ..models.formula import check_formula

            try:
                check_formula(self.formula)  # refused here, before any data is read or evaluated
            except ConfigError as exc:
                raise ConfigError(f"{check.source}: 'mixed.formula': {exc}") from None
        check.boolean("mixed.reml", self.reml)
        check.integer("mixed.ci_boot", self.ci_boot, minimum=1, allow_none=True)
        check.integer("mixed.min_levels", self.min_levels, minimum=2)
        check.choice("mixed.ddf", self.ddf, DDF_METHODS)


@dataclass(frozen=True)
class FewshotConfig:
    enabled: bool | str = AUTO  # auto: when some (model, task, target) has several n_target_examples
    target_shares: tuple[float, ...] = (0.9,)  # data demand: n to reach this share of in-language score

    def __post_init__(self):
        check = _Checker("configuration")
        check.boolean("fewshot.enabled", self.enabled, allow_auto=True)
        if not isinstance(self.target_shares, (list, tuple)) or not self.target_shares:
            check.fail("fewshot.target_shares", "must be a non-empty list of shares between 0 and 1",
                       self.target_shares)
        for index, share in enumerate(self.target_shares):
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
                check.fail(f"fewshot.target_shares[{index}]", "must be a number in (0, 1]", share)
        object.__setattr__(self, "target_shares", tuple(float(s) for s in self.target_shares))


@dataclass(frozen=True)
class CVConfig:
    schemes: tuple[str, ...] = DEFAULT_CV_SCHEMES
    k: int = 5  # folds of the random scheme
    max_folds: int | None = 10  # languages held out in this many groups; None: one fold per language
    n_jobs: int | str = AUTO  # folds at once in threads (auto: the CPUs available, at most 8)
    select: bool = False  # choose an estimator per outer fold by inner cross-validation (and stack); ~2x the CV's time
    hybrid: bool = False  # also cross-validate the trees + random intercepts hybrid (models/hybrid.py), saved for predict; ~2.5x the fit's CPU time
    inner_folds: int = 3  # folds of that inner cross-validation

    def __post_init__(self):
        check = _Checker("configuration")
        check.boolean("cv.select", self.select)
        check.boolean("cv.hybrid", self.hybrid)
        check.integer("cv.inner_folds", self.inner_folds, minimum=2)
        schemes = check.names("cv.schemes", self.schemes)
        for index, scheme in enumerate(schemes):
            check.choice(f"cv.schemes[{index}]", scheme, CV_SCHEMES)
        object.__setattr__(self, "schemes", schemes)
        check.integer("cv.k", self.k, minimum=2)
        check.integer("cv.max_folds", self.max_folds, minimum=2, allow_none=True)
        if self.n_jobs != AUTO:
            check.integer("cv.n_jobs", self.n_jobs, minimum=1)


@dataclass(frozen=True)
class RankingConfig:
    enabled: bool | str = AUTO  # auto: when targets have at least 3 candidate sources
    k: int = 3  # NDCG@k
    max_folds: int | None = 10  # targets held out in this many groups; None: one at a time
    select: bool = False  # also lambdarank_mixed, ensemble and 'best' (chosen by inner CV; ~4x the ranking's time)
    inner_folds: int = 3  # groups of training targets of that inner CV

    def __post_init__(self):
        check = _Checker("configuration")
        check.boolean("ranking.enabled", self.enabled, allow_auto=True)
        check.integer("ranking.k", self.k, minimum=1)
        check.integer("ranking.max_folds", self.max_folds, minimum=2, allow_none=True)
        check.boolean("ranking.select", self.select)
        check.integer("ranking.inner_folds", self.inner_folds, minimum=2)


SECTIONS = {"ols": OLSConfig, "mixed": MixedConfig, "fewshot": FewshotConfig, "cv": CVConfig,
            "ranking": RankingConfig}
#: Top-level keys written to the saved configuration only when set (older fits lack them).
_OPTIONAL_KEYS = ("variant", "tokenizer", "subset", "individual_languages", "metrics")
#: The settings of one declared metric (see xltstats.results.metrics).
METRIC_KEYS = ("range", "higher_is_better", "label", "override")


@dataclass(frozen=True)
class FitConfig:
    """Everything ``python -m xltstats.fit`` does, with its defaults."""

    data: str = "xpos"  # registry dataset name or results file
    variant: str | None = None  # another table of a registry dataset (xpos: "all", "1epoch", ...)
    seed: int = 0
    # ordered (score(a, b) and score(b, a) differ), unordered (symmetric pairs: one effect per
    # language, CV by held-out language, no source ranking) or auto (ordered unless the table
    # looks unordered, then the fit asks which); see xltstats.pipeline.pairs
    pairs: str = "auto"
    features: tuple[str, ...] = DEFAULT_FEATURES  # pair features computed by xltstats.features
    # the dataset's own columns under xltstats' names: {genetic: genetic_distance} uses the
    # dataset's column genetic as genetic_distance (kept, not recomputed)
    feature_aliases: Mapping[str, str] = field(default_factory=dict)
    lexical_corpus: str = "udhr"  # parallel corpus of the lexical measures: udhr or pud
    # none, or softimpute: Grambank gaps filled as URIEL+ fills them (xltstats.features.grambank_impute)
    morphology_imputation: str = "none"
    tokenizer: str | None = None  # Hugging Face tokenizer for subword_overlap
    covariates: tuple[str, ...] = DEFAULT_COVARIATES  # dataset columns (or pair-derived ones)
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_GROUPS))
    compare: tuple[tuple[str, str], ...] = DEFAULT_COMPARE  # group pairs tested against each other
    ols: OLSConfig = field(default_factory=OLSConfig)
    mixed: MixedConfig = field(default_factory=MixedConfig)
    fewshot: FewshotConfig = field(default_factory=FewshotConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    report: bool | Mapping[str, bool] = True  # false: no report; {svg: true}: figures also as SVG
    subset: Mapping[str, Any] | None = None  # keep rows by column value(s)
    # true: individual languages stay apart from their macrolanguage (pes, cmn, arb, nob are not
    # read as fas, zho, ara, nor); null/false: folded (xltstats.languages)
    individual_languages: bool | None = None
    # metrics the results table may use besides the built-in ones (xltstats.results.metrics):
    # {gh_distance: {range: [0, null], higher_is_better: false, label: "Gromov-Hausdorff distance"}}
    metrics: Mapping[str, Mapping[str, Any]] | None = None

    def __post_init__(self):
        self._validate(_Checker("configuration"))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_dict(cls, mapping: Mapping | None, *, source: str = "configuration") -> "FitConfig":
        """A configuration from a (partial) mapping merged over the defaults; keys checked."""
        check = _Checker(source)
        merged = _merge(default_dict(), check.mapping("", mapping))
        check.keys("", merged, [f.name for f in dataclasses.fields(cls)])
        values = dict(merged)
        for name, section in SECTIONS.items():
            part = check.mapping(name, merged.get(name))
            check.keys(name, part, [f.name for f in dataclasses.fields(section)])
            try:
                values[name] = section(**part)
            except ConfigError as exc:
                raise ConfigError(str(exc).replace("configuration:", f"{source}:", 1)) from None
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("configuration:", f"{source}:", 1)) from None

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Mapping | None = None) -> "FitConfig":
        """The defaults merged with the YAML file ``path``, then with ``overrides``."""
        user = read_yaml(path)
        config = cls.from_dict(user, source=str(path))
        return config.replace(**overrides) if overrides else config

    def replace(self, **changes) -> "FitConfig":
        """A copy with ``changes`` (sections may be given as partial mappings: ``ols={"n_boot": 50}``)."""
        return FitConfig.from_dict(_merge(self.to_dict(full=True), changes), source="configuration")

    # ------------------------------------------------------------------ output
    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """Plain lists and mappings (for JSON and YAML).  Without ``full``, the optional keys
        ``variant``, ``tokenizer``, ``subset`` and ``individual_languages`` appear only when set."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not full and f.name in _OPTIONAL_KEYS and value is None:
                continue
            out[f.name] = _plain(value)
        return out

    # ------------------------------------------------------------------ checks
    def _validate(self, check: _Checker) -> None:
        check.text("data", self.data, allow_none=False)
        check.text("variant", self.variant)
        check.integer("seed", self.seed, minimum=0, maximum=MAX_SEED)
        check.choice("pairs", self.pairs, PAIRS)
        object.__setattr__(self, "features", check.names("features", self.features))
        object.__setattr__(self, "covariates", check.names("covariates", self.covariates))
        aliases = check.mapping("feature_aliases", self.feature_aliases)
        for column, name in aliases.items():
            check.text(f"feature_aliases.{column}", name, allow_none=False)
            if name == column:
                check.fail(f"feature_aliases.{column}", "must name another column than itself", name)
        targets = list(aliases.values())
        for name in set(targets):
            if targets.count(name) > 1:
                check.fail("feature_aliases", f"gives {name!r} to more than one column", dict(aliases))
        object.__setattr__(self, "feature_aliases", {str(k): v for k, v in aliases.items()})
        check.choice("lexical_corpus", self.lexical_corpus, LEXICAL_CORPORA)
        check.choice("morphology_imputation", self.morphology_imputation, ("none", "softimpute"))
        check.text("tokenizer", self.tokenizer)
        groups = check.mapping("groups", self.groups)
        object.__setattr__(self, "groups", {str(g): check.names(f"groups.{g}", cols) for g, cols in groups.items()})
        self._check_group_columns(check)
        pairs = []
        if not isinstance(self.compare, (list, tuple)):
            check.fail("compare", "must be a list of pairs of group names", self.compare)
        for index, pair in enumerate(self.compare):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(p in self.groups for p in pair):
                check.fail(f"compare[{index}]", f"must be a pair of group names from 'groups' "
                                                f"({', '.join(self.groups)})", pair)
            pairs.append((str(pair[0]), str(pair[1])))
        object.__setattr__(self, "compare", tuple(pairs))
        for name, section in SECTIONS.items():
            if not isinstance(getattr(self, name), section):
                check.fail(name, f"must be a {section.__name__} (or a mapping of its settings)", getattr(self, name))
        if isinstance(self.report, Mapping):
            check.keys("report", dict(self.report), ["svg"])
            check.boolean("report.svg", self.report.get("svg", False))
            object.__setattr__(self, "report", dict(self.report))
        else:
            check.boolean("report", self.report)
        if self.individual_languages is not None:
            check.boolean("individual_languages", self.individual_languages)
        if self.metrics is not None:
            object.__setattr__(self, "metrics", _check_metrics(check, self.metrics))
        if self.subset is not None:
            subset = check.mapping("subset", self.subset)
            for column, keep in subset.items():
                values = keep if isinstance(keep, list) else [keep]
                if not values or any(isinstance(v, (dict, list)) for v in values):
                    check.fail(f"subset.{column}", "must be a value or a list of values to keep", keep)

    def _check_group_columns(self, check: _Checker) -> None:
        """A group column must be something the fit can have: a feature, a covariate, or a feature
        the builder knows (the default groups name columns a user's feature list may leave out)."""
        from ..features.build import FEATURES

        known = (set(self.features) | set(self.covariates) | set(FEATURES.names()) | set(DEFAULT_COVARIATES)
                 | {c for cols in DEFAULT_GROUPS.values() for c in cols})
        for group, columns in self.groups.items():
            for column in columns:
                if column not in known:
                    import difflib

                    near = difflib.get_close_matches(column, sorted(known), n=3)
                    hint = f"; did you mean {', '.join(near)}?" if near else ""
                    check.fail(f"groups.{group}", f"names {column!r}, which is neither in 'features' nor in "
                                                  f"'covariates' nor a feature xltstats computes{hint}")


def _check_metrics(check: _Checker, value) -> dict[str, dict]:
    """``metrics``: name -> {range: [low, high] (null: unbounded side), higher_is_better, label,
    override}, normalised (names lower-cased, bounds as floats, label and override filled in)."""
    import math

    from ..results import METRIC_ALIASES, METRICS

    out: dict[str, dict] = {}
    for raw, entry in check.mapping("metrics", value).items():
        if not isinstance(raw, str) or not raw.strip() or raw != raw.strip():
            check.fail(f"metrics.{raw}", "is not a metric name (a non-empty string without surrounding spaces)")
        name, key = raw.lower(), f"metrics.{raw}"
        if name in out:
            check.fail(key, f"declares {name!r} twice (names are compared lower-cased)")
        entry = check.mapping(key, entry)
        check.keys(key, entry, METRIC_KEYS)
        if "higher_is_better" not in entry:
            check.fail(f"{key}.higher_is_better", "must be given (true or false): the ranking, the report's "
                                                  "colours and the planner follow it")
        higher = check.boolean(f"{key}.higher_is_better", entry["higher_is_better"])
        bounds = entry.get("range", [None, None])
        if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
            check.fail(f"{key}.range", "must be a list [low, high] (null for an unbounded side)", bounds)
        for index, bound in enumerate(bounds):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))
                                      or not math.isfinite(bound)):
                check.fail(f"{key}.range[{index}]", "must be a finite number or null (unbounded)", bound)
        low, high = (None if b is None else float(b) for b in bounds)
        if low is not None and high is not None and not low < high:
            check.fail(f"{key}.range", "must be ordered, low < high", list(bounds))
        label = check.text(f"{key}.label", entry.get("label"))
        override = check.boolean(f"{key}.override", entry.get("override", False))
        builtin = METRIC_ALIASES.get(name, name)
        if builtin in METRICS and not override:
            alias = f" (an alias of {builtin!r})" if builtin != name else ""
            check.fail(key, f"is a built-in metric{alias} with range {METRICS[builtin][0]:g}-{METRICS[builtin][1]:g}, "
                            "higher is better; add 'override: true' to replace it with this declaration, or "
                            "choose another name")
        if override and builtin not in METRICS:
            check.fail(f"{key}.override", "is only for a built-in metric's name; this one is not built in", True)
        out[name] = {"range": [low, high], "higher_is_better": higher, "label": label, "override": override}
    return out


# ---------------------------------------------------------------------- helpers

def default_dict() -> dict[str, Any]:
    """The defaults as plain data (what ``fit_default.yaml`` says)."""
    out = {}
    for f in dataclasses.fields(FitConfig):
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out[f.name] = _plain(value)
    return out


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _merge(base: dict, override: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if dataclasses.is_dataclass(value):
            value = _plain(value)
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: str | Path) -> dict:
    """A YAML mapping from ``path`` (safe loader), with errors naming the file, line and column."""
    import yaml

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"{path}, line {line}, column {column}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                          "save the configuration as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: Mapping | None = None) -> FitConfig:
    """The defaults, merged with the YAML file ``path`` (if any) and then ``overrides`` (None values ignored)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if path is not None:
        config = FitConfig.from_dict(read_yaml(path), source=str(path))
    else:
        config = FitConfig()
    if overrides:
        try:
            config = config.replace(**overrides)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("configuration:", "command line:", 1)) from None
    return config
