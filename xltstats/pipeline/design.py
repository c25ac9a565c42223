"""The model table: the results with every column the models use, built the same way for fit and predict.

:func:`model_table` joins to a results table (or a table of new pairs) the pair features of
:mod:`xltstats.features`, the dataset's own covariates, the covariates that follow from the pair
(``same_language``, ``same_script``, ``target_in_pretraining``), source-weighted features for
multi-source rows; for a fit it then keeps the complete rows, leaves out columns that are constant
there, builds the feature groups and the default mixed formula.

The trees and OLS of cross-validation see more than the explanatory models: the multi-source and
few-shot columns of :func:`multisource_features` (LITMUS's log example counts per pivot language,
the target's own count, the nearest and farthest source's pair features) and, when the mixed model
has ``model`` or ``task`` as random effects, those grouping columns (:func:`grouping_columns`), so
that every estimator of a comparison is given the same information (``ModelTable.tree_features``
and ``ModelTable.categorical``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..errors import ConfigError, InputError
from .config import FitConfig
from .factors import check_random_terms, default_formula
from .multisource import grouping_columns, multisource_features, tree_columns

#: Pre-training size columns a dataset may ship; when it does, our pre-training shares are not added.
DATASET_SIZE_COLUMNS = {"source_pretrain_size", "target_pretrain_size"}
SHARE_FEATURES = {"source_pretrain_share", "target_pretrain_share"}
PRETRAINING_FEATURES = SHARE_FEATURES | {"target_in_pretraining"}
ROW_KEYS = ("model", "task", "source", "target", "n_source_examples", "n_target_examples", "seed")


@dataclass
class ModelTable:
    """What the models are fitted on, and how it was made."""

    data: pd.DataFrame  # every row, features joined (the fit folder's results.csv)
    complete: pd.DataFrame  # the rows that have the score and every used column
    features: pd.DataFrame  # the pair features (features.csv)
    coverage: pd.DataFrame  # their coverage (feature_coverage.csv)
    used: list[str]  # the model's columns
    groups: dict[str, list[str]] = field(default_factory=dict)  # feature groups over the used columns
    formula: str | None = ""  # the mixed model's formula (None: no mixed model, the notes say why)
    notes: list[str] = field(default_factory=list)
    pairs: str = "ordered"  # or "unordered" (xltstats.pipeline.pairs)
    symmetrised: dict[str, list[str]] = field(default_factory=dict)  # directional column -> its min and max
    #: where each used column came from: "builder" (computed by the feature builder), "dataset"
    #: (the dataset's own column) or "pair" (``same_language``, from the codes); predict follows it
    provenance: dict[str, str] = field(default_factory=dict)
    #: the prediction estimators' columns: ``used`` and the multi-source / few-shot columns that vary
    tree_features: list[str] = field(default_factory=list)
    #: grouping columns the mixed model has as random effects besides source and target (model, task)
    categorical: list[str] = field(default_factory=list)

    @property
    def rows_used(self) -> str:
        """The rows the models use, and why the others were left out (:func:`rows_used_text`)."""
        return rows_used_text(self.data, self.used)


def apply_subset(data: pd.DataFrame, subset) -> pd.DataFrame:
    """Keep the rows whose columns have the configured value(s)."""
    if not subset:
        return data
    for column, keep in subset.items():
        if column not in data.columns:
            raise ConfigError(f"'subset' names column '{column}', which the data does not have "
                              f"(columns: {', '.join(map(str, data.columns))})")
        values = keep if isinstance(keep, list) else [keep]
        data = data[data[column].isin(values)]
    if data.empty:
        raise ConfigError(f"'subset' {subset} leaves no rows")
    return data.reset_index(drop=True)


def feature_pairs(data: pd.DataFrame) -> pd.DataFrame:
    """Every (source, target) pair whose features a table needs; multi-source rows give one per source."""
    from ..results import MULTI_SOURCE, SOURCE_LANGUAGES, parse_source_languages

    pairs = data.loc[data["source"] != MULTI_SOURCE, ["source", "target"]].drop_duplicates()
    if SOURCE_LANGUAGES in data.columns:
        multi = [(source, target)
                 for value, target in data.loc[data["source"] == MULTI_SOURCE, [SOURCE_LANGUAGES, "target"]]
                 .itertuples(index=False)
                 for source in parse_source_languages(value)]
        pairs = pd.concat([pairs, pd.DataFrame(multi, columns=["source", "target"])]).drop_duplicates()
    return pairs.sort_values(["source", "target"]).reset_index(drop=True)


def join_pair_features(data: pd.DataFrame, features: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``data`` with ``columns`` of the pair features (source-weighted for multi-source rows)."""
    from ..models.multisource import aggregate_multisource

    data = data.drop(columns=[c for c in columns if c in data.columns])
    if (data["source"] == "mul").any():
        return aggregate_multisource(data, features[["source", "target", *columns]])
    return data.merge(features[["source", "target", *columns]], on=["source", "target"], how="left")


def compute_pair_features(pairs: pd.DataFrame, wanted: list[str], config: FitConfig, models, mirror) -> pd.DataFrame:
    """:func:`xltstats.features.build_pair_features` with the configuration's corpus and tokenizer and
    the pre-training table of ``models`` (the model names of the data)."""
    from ..features import build_pair_features
    from ..features.data_sizes import pretraining_model_for

    return build_pair_features(pairs, features=wanted, model=pretraining_model_for(models),
                               corpus=config.lexical_corpus, tokenizer=config.tokenizer, mirror=mirror,
                               on_unknown="nan", morphology_imputation=config.morphology_imputation)


def add_pair_features(results: pd.DataFrame, features=None, *, on_unknown: str = "nan", model: str | None = None,
                      corpus: str = "udhr", tokenizer=None, mirror=None) -> pd.DataFrame:
    """``results`` with pair features joined to every row (public: ``xltstats.add_features``).

    ``features`` are feature columns or groups as :func:`xltstats.build_pair_features` takes them
    (default: those that need no corpus or tokenizer).  ``on_unknown="nan"`` leaves the features
    of a language a resource lacks missing; ``"error"`` refuses such a language.  Multi-source rows
    (``source == "mul"``) get the count-weighted features of their ``source_languages``; columns the
    table already has are replaced.  ``model`` picks the pre-training table (default: from the
    table's ``model`` column).
    """
    from ..features import build_pair_features
    from ..features.build import resolve_features
    from ..features.data_sizes import pretraining_model_for

    if model is None:
        model = pretraining_model_for(results["model"].unique()) if "model" in results.columns else "xlm-r"
    table = build_pair_features(feature_pairs(results), features=features, model=model, corpus=corpus,
                                tokenizer=tokenizer, mirror=mirror, on_unknown=on_unknown)
    wanted = resolve_features(features, tokenizer_given=tokenizer is not None)
    columns = [c for c in table.columns if c in wanted]
    return join_pair_features(results, table, columns)


def add_features(data: pd.DataFrame, config: FitConfig, *, mirror=None, notes: list[str] | None = None,
                 provenance: dict[str, str] | None = None):
    """Join pair features and covariates onto a results table.

    Returns ``(data, features, coverage, used)``: the table with the columns joined, the pair
    features, their coverage, and the columns that have values (in the order features, the
    dataset's own features, covariates).  What is skipped and why goes to ``notes``; where each
    column came from (see :attr:`ModelTable.provenance`) to ``provenance``.
    """
    from ..features import feature_coverage
    from ..features.build import DEFAULT_FEATURES

    notes = [] if notes is None else notes
    wanted = list(config.features)
    # A dataset that ships its own pre-training sizes keeps them; the shares from our tables are
    # the fallback for datasets that do not.
    if DATASET_SIZE_COLUMNS & set(data.columns):
        wanted = [f for f in wanted if f not in SHARE_FEATURES]
    # A feature the dataset ships under the same name (LangRank's word_overlap, say) is the
    # dataset's measurement: keep it rather than overwrite it with ours.
    shipped = [f for f in wanted if f in data.columns and pd.to_numeric(data[f], errors="coerce").notna().any()]
    if shipped:
        notes.append(f"kept the dataset's own {', '.join(shipped)} (not recomputed)")
        wanted = [f for f in wanted if f not in shipped]
    # Covariates the dataset does not ship but that follow from the pair alone (same_script,
    # target_in_pretraining, ...: no corpus, no tokenizer) are computed.
    wanted += [c for c in config.covariates if c not in data.columns and c in DEFAULT_FEATURES and c not in wanted]
    provenance = {} if provenance is None else provenance
    provenance.update({c: "dataset" for c in list(shipped) + list(config.covariates) if c in data.columns})
    if "same_language" in config.covariates and "same_language" not in data.columns:
        data = data.assign(same_language=(data["source"] == data["target"]).astype(float))
        provenance["same_language"] = "pair"
    from ..features.data_sizes import pretraining_note

    note = pretraining_note(data["model"].unique())
    if note and set(wanted) & PRETRAINING_FEATURES:
        notes.append(note)
    features = compute_pair_features(feature_pairs(data), wanted, config, data["model"].unique(), mirror)
    coverage = feature_coverage(features)
    feature_cols = [c for c in features.columns if c in wanted]
    for missing in sorted(set(wanted) - set(feature_cols)):
        notes.append(f"feature {missing} is not available and was skipped")
    data = join_pair_features(data, features, feature_cols)
    provenance.update({c: "builder" for c in feature_cols})
    covariates = [c for c in config.covariates if c in data.columns]
    used = []
    for col in feature_cols + shipped + covariates:
        values = pd.to_numeric(data[col], errors="coerce")
        if values.notna().sum() == 0:
            notes.append(f"{col} has no values for this data and was skipped")
        elif col not in used:  # constant columns are left out where complete rows are known
            data[col] = values.astype(float)
            used.append(col)
    return data, features, coverage, used


#: A default feature that would leave out more than this share of the rows with a score is
#: dropped from the default set (``features``/``covariates`` left at their defaults).
DEFAULT_DROP_LIMIT = 0.10


def prune_default_columns(data: pd.DataFrame, used: list[str], config: FitConfig, notes: list[str]) -> list[str]:
    """``used`` without the default features that would cost more than :data:`DEFAULT_DROP_LIMIT`
    of the scored rows.  Only columns the configuration did not ask for by name are candidates
    (``features``/``covariates`` left at their defaults); the one that costs most rows goes first,
    until the rows the rest leave out are within the limit.  Each is said in ``notes``."""
    from .config import DEFAULT_COVARIATES, DEFAULT_FEATURES

    defaults = ((set(DEFAULT_FEATURES) if tuple(config.features) == DEFAULT_FEATURES else set())
                | (set(DEFAULT_COVARIATES) if tuple(config.covariates) == DEFAULT_COVARIATES else set()))
    scored = data[data["score"].notna()]
    n = len(scored)
    if not n or not defaults & set(used):
        return used
    missing = scored[used].isna()
    kept = list(used)
    while True:
        lost = missing[kept].any(axis=1)
        if lost.mean() <= DEFAULT_DROP_LIMIT:
            return kept
        candidates = [c for c in kept if c in defaults and missing[c].any()]
        if not candidates:
            return kept
        # the one whose removal gives back the most rows (ties: the one missing most, then name)
        back = {c: int(lost.sum() - missing[[k for k in kept if k != c]].any(axis=1).sum()) for c in candidates}
        worst = max(candidates, key=lambda c: (back[c], int(missing[c].sum()), c))
        key = "features" if worst in DEFAULT_FEATURES else "covariates"
        kind = "feature" if key == "features" else "covariate"
        notes.append(f"default {kind} {worst} is missing for {int(missing[worst].sum())} of the {n} rows with a "
                     f"score ({missing[worst].mean():.0%}); left out of the default set so that no more than "
                     f"{DEFAULT_DROP_LIMIT:.0%} of the rows are dropped; to use it anyway, list it in '{key}' in "
                     "the fit config (a list other than the default one is used as given)")
        kept.remove(worst)


def apply_aliases(data: pd.DataFrame, config: FitConfig, notes: list[str] | None = None, *,
                  required: bool = True) -> pd.DataFrame:
    """The dataset's columns renamed to the xltstats names of ``feature_aliases``.

    ``required``: a column the aliases name must be in ``data`` (a fit); for new pairs to predict
    the aliases apply to the columns they have.
    """
    aliases = dict(config.feature_aliases)
    if not aliases:
        return data
    for column, name in aliases.items():
        if column not in data.columns:
            if not required:
                continue
            raise ConfigError(f"'feature_aliases.{column}': the data has no column {column!r} (columns: "
                              f"{', '.join(map(str, data.columns))})")
        if name in data.columns:
            raise ConfigError(f"'feature_aliases.{column}': the data already has a column {name!r}; it cannot "
                              f"also be {column!r}")
        if notes is not None:
            asked = name in config.features or name in config.covariates
            notes.append(f"the dataset's column {column} is used as {name} (feature_aliases)" if asked else
                         f"feature_aliases: {column} -> {name}, but {name} is in neither 'features' nor "
                         "'covariates', so it is not used")
    return data.rename(columns={c: n for c, n in aliases.items() if c in data.columns})


def alias_hints(data: pd.DataFrame, config: FitConfig, used: list[str], notes: list[str]) -> None:
    """One note for the dataset's columns that look like an xltstats feature but are not used
    (``genetic`` or LangRank's ``uriel_genetic`` and ``genetic_distance``): ``feature_aliases``
    would use them."""
    from ..features.build import FEATURES

    known = set(FEATURES.names())
    found = {}
    for column in map(str, data.columns):
        if column in used or column in config.feature_aliases or column in known:
            continue
        base = column[len("uriel_"):] if column.startswith("uriel_") else column
        name = next((n for n in (f"{base}_distance", f"{base}_similarity") if n in known), None)
        if name is not None and name not in found.values() and pd.to_numeric(data[column], errors="coerce").notna().any():
            found[column] = name
    if found:
        listed = ", ".join(f"{c} ({n})" for c, n in found.items())
        mapping = ", ".join(f"{c}: {n}" for c, n in found.items())
        notes.append(f"the dataset's column(s) {listed} look like xltstats features but are not used; to use them "
                     f"instead of xltstats' own, set 'feature_aliases: {{{mapping}}}' in the fit config")


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def rows_used_text(data: pd.DataFrame, used: list[str], *, most: int = 3) -> str:
    """How many rows the models use, and which missing columns cost the others.

    A row is left out when its score or any used column is missing.  Each column is named with
    the rows it lacks and, of those, the rows it alone keeps out (leaving that column out of
    ``features`` would give them back); the columns that cost the most rows come first.
    """
    needed = [c for c in ["score", *used] if c in data.columns]
    missing = data[needed].isna()
    kept = int((~missing.any(axis=1)).sum())
    total = len(data)
    if kept == total:
        return f"the models use all {total:,} rows"
    left = total - kept
    alone = missing[missing.sum(axis=1) == 1]
    costs = sorted(((int(missing[c].sum()), int(alone[c].sum()), c) for c in needed if missing[c].any()),
                   key=lambda cost: (-cost[0], -cost[1], cost[2]))
    named = []
    for lacking, only, column in costs[:most]:
        what = "the score" if column == "score" else column
        part = f"{what} is missing in {lacking:,} rows ({_share(lacking, total)})"
        if only and column != "score":
            part += f", {only:,} of them lack nothing else (left out of 'features', {column} would give them back)"
        elif only:
            part += f", {only:,} of them lack nothing else"
        named.append(part)
    more = f"; {len(costs) - most} more column(s) miss fewer rows" if len(costs) > most else ""
    return (f"the models use {kept:,} of {total:,} rows ({_share(kept, total)}); the other {left:,} "
            f"({_share(left, total)}) were left out because a value they need is missing: "
            + "; ".join(named) + more)


def complete_rows(data: pd.DataFrame, used: list[str], notes: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The rows with the score and every used column; columns constant there are left out.

    A column can vary in the data but be constant in the rows that have every used feature (e.g.
    target_in_pretraining over the PUD languages): it is left out, then the rows are looked at again.
    """
    while True:
        complete = data.dropna(subset=used + ["score"])
        constant = [c for c in used if complete[c].nunique(dropna=True) < 2]
        if not constant or len(complete) == 0:
            break
        for col in constant:
            where = "this data" if data[col].nunique(dropna=True) < 2 else "the rows that have every used feature"
            notes.append(f"{col} is constant in {where} and was skipped")
        used = [c for c in used if c not in constant]
    complete = complete.reset_index(drop=True)
    if len(complete) < len(data):
        notes.append(rows_used_text(data, used))
    if not used:
        pairs = data[["source", "target"]].drop_duplicates()
        languages = sorted(set(pairs["source"]) | set(pairs["target"]))
        raise ConfigError(
            f"every pair feature is constant in the {len(data)} row(s): the table has "
            f"{len(pairs)} language pair(s) over {len(languages)} language(s) ({', '.join(languages[:10])}); "
            "a fit needs pairs of several source and target languages")
    if len(complete) < len(used) + 10 and len(complete) == len(data):
        raise ConfigError(
            f"the table has only {len(data)} row(s) with a score; fitting {len(used)} features "
            f"({', '.join(used)}) needs at least {len(used) + 10}")
    if len(complete) < len(used) + 10:
        missing = data[used].isna().sum().sort_values(ascending=False, kind="stable")
        worst = ", ".join(f"{c} ({n} of {len(data)} rows)" for c, n in missing.items() if n > 0) or "none"
        raise ConfigError(
            f"only {len(complete)} rows have every used feature ({', '.join(used)}); "
            f"too few to fit {len(used)} features; missing values: {worst}; "
            "leave the worst out of 'features' in the configuration"
        )
    return complete, used


def check_formula_columns(formula: str, data: pd.DataFrame, source: str = "configuration") -> None:
    """A configured formula naming a column the model table lacks is an error before any fitting."""
    from ..models.formula import referenced_columns

    try:
        referenced_columns(formula, data)
    except InputError as exc:
        raise ConfigError(f"{source}: 'mixed.formula': {exc.message}") from None


def model_table(results: pd.DataFrame, config: FitConfig, *, mirror=None) -> ModelTable:
    """The table a fit's models use (see the module docstring)."""
    from . import pairs as unordered

    notes: list[str] = []
    kind = unordered.resolve_pairs(config, results)
    results = apply_aliases(results, config, notes)
    if kind == "unordered":
        results = unordered.canonicalise(results, notes)
    provenance: dict[str, str] = {}
    data, features, coverage, used = add_features(results, config, mirror=mirror, notes=notes, provenance=provenance)
    alias_hints(data, config, used, notes)
    used = prune_default_columns(data, used, config, notes)
    renamed: dict[str, list[str]] = {}
    if kind == "unordered":
        data, used, renamed = unordered.symmetrise(
            data, used, notes, computed=set(features.columns) - {"source", "target"},
            reversed_values=lambda column: reversed_feature(data, column, config, mirror))
    # a symmetric <stem>_min/_max column comes from where its directional column came from
    origins = {**provenance, **{n: provenance.get(c, "dataset") for c, names in renamed.items() for n in names}}
    data, extra = multisource_features(data)
    complete, used = complete_rows(data, used, notes)
    groups = {g: [n for c in cols for n in renamed.get(c, [c]) if n in used] for g, cols in config.groups.items()}
    groups = {g: list(dict.fromkeys(cols)) for g, cols in groups.items() if cols}
    if config.mixed.formula:
        check_formula_columns(config.mixed.formula, complete)
        if kind == "unordered":
            unordered.check_unordered_formula(config.mixed.formula)
        formula = check_random_terms(config.mixed.formula, complete, min_levels=config.mixed.min_levels, notes=notes)
    else:
        formula = default_formula(used, complete, min_levels=config.mixed.min_levels, notes=notes,
                                  unordered=kind == "unordered")
    return ModelTable(data=data, complete=complete, features=features, coverage=coverage, used=used,
                      groups=groups, formula=formula, notes=notes, pairs=kind, symmetrised=renamed,
                      provenance={c: origins.get(c, "dataset") for c in [*used, *renamed]},
                      tree_features=tree_columns(complete, used, extra),
                      categorical=grouping_columns(formula, complete))


def reversed_feature(data: pd.DataFrame, column: str, config: FitConfig, mirror=None) -> pd.Series:
    """A pair feature xltstats computes, for each row's reversed pair (the ``source`` side of a
    ``target_X`` feature), aligned with ``data``."""
    pairs = feature_pairs(data).rename(columns={"source": "target", "target": "source"})[["source", "target"]]
    models = data["model"].unique() if "model" in data.columns else ["xlm-r"]
    table = compute_pair_features(pairs, [column], config, models, mirror)
    if column not in table.columns:
        return pd.Series(float("nan"), index=data.index)
    flipped = table[["source", "target", column]].rename(columns={"source": "target", "target": "source",
                                                                  column: "_reversed"})
    joined = data[["source", "target"]].merge(flipped.drop_duplicates(["source", "target"]),
                                              on=["source", "target"], how="left")
    return pd.Series(joined["_reversed"].to_numpy(), index=data.index)


# ---------------------------------------------------------------------- prediction

def column_origin(column: str, config: FitConfig, provenance: dict[str, str] | None = None) -> str:
    """Where a fit took a model column from: ``"builder"``, ``"dataset"`` or ``"pair"``.

    A fit folder records it (``model.json`` ``provenance``); for a folder written before that, a
    column the feature builder computes is taken as computed (the fit computes a covariate with the
    builder whenever the dataset lacks it), other covariates as the dataset's own.
    """
    from ..features.build import ALL_FEATURES

    if provenance and column in provenance:
        return provenance[column]
    if column == "same_language":
        return "pair"
    if column in config.features or column in ALL_FEATURES:
        return "builder"
    return "dataset"


def prediction_table(pairs: pd.DataFrame, columns: list[str], config: FitConfig, *, reference: pd.DataFrame | None,
                     mirror=None, provenance: dict[str, str] | None = None) -> pd.DataFrame:
    """New pairs with the model's ``columns`` they lack, computed as the fit computed them.

    Each column is made where the fit took it from (:func:`column_origin`): pair features and the
    covariates the fit computed (``same_script``, ``target_in_pretraining``, ...) by the same
    builder with the fit's corpus, tokenizer and pre-training table, source-weighted over the
    ``source_languages`` of a multi-source row as in the fit; ``same_language`` from the codes; the
    dataset's own columns looked up in the fit's table ``reference`` (:func:`dataset_covariates`).
    The multi-source and few-shot columns come from :func:`multisource_features`, and a source
    set's ``f_min`` / ``f_max`` (tree features) with their builder feature ``f``.
    What cannot be computed stays missing.
    """
    pairs = apply_aliases(pairs, config, required=False)
    if config.pairs == "unordered":
        return _unordered_prediction_table(pairs, columns, config, reference=reference, mirror=mirror,
                                           provenance=provenance)
    missing = [c for c in columns if c not in pairs.columns]
    if not missing:
        return pairs
    pairs, made = multisource_features(pairs, missing)
    missing = [c for c in missing if c not in made]
    if not missing:
        return pairs
    # f_min / f_max of a source set come with their feature f (aggregate_multisource)
    aggregated = {c: c[:-4] for c in missing if c.endswith(("_min", "_max")) and not (provenance and c in provenance)
                  and column_origin(c[:-4], config, provenance) == "builder"}
    missing = list(dict.fromkeys(aggregated.get(c, c) for c in missing))
    origin = {c: column_origin(c, config, provenance) for c in missing}
    table = pairs
    if any(o == "pair" for o in origin.values()):
        table = table.assign(**{c: (table["source"] == table["target"]).astype(float)
                                for c, o in origin.items() if o == "pair"})
    from_dataset = [c for c in missing if origin[c] == "dataset"]
    if from_dataset:
        table = dataset_covariates(table, from_dataset, reference)
    built = [c for c in missing if origin[c] == "builder"]
    if not built:
        return table
    models = reference["model"].unique() if reference is not None and "model" in reference.columns else ["xlm-r"]
    features = compute_pair_features(feature_pairs(table), built, config, models, mirror)
    lacking = [c for c in built if c not in features.columns]
    if lacking:
        raise InputError(f"feature(s) {lacking} are neither in the pairs file nor computable by build_pair_features",
                         column=lacking[0])
    if aggregated:
        from ..models.multisource import aggregate_multisource

        return aggregate_multisource(table.drop(columns=[c for c in built if c in table.columns]),
                                     features[["source", "target", *built]])
    return join_pair_features(table, features, built)


def _unordered_prediction_table(pairs: pd.DataFrame, columns: list[str], config: FitConfig, *, reference, mirror,
                                provenance=None):
    """New pairs of an unordered fit: codes sorted as the fit sorted them, and each symmetric
    ``<stem>_min``/``<stem>_max`` column made from the directional columns it came from."""
    from . import pairs as unordered

    table = unordered.canonicalise(pairs.assign(score=pairs.get("score", float("nan"))), [], average=False)
    if "score" not in pairs.columns:
        table = table.drop(columns="score")
    wanted = [c for c in columns if c not in table.columns]
    directional = [c for c in dict.fromkeys([*config.features, *config.covariates])
                   if (found := unordered.directional_stem(c)) is not None
                   and {f"{found[1]}_min", f"{found[1]}_max"} & set(wanted)]
    plain = [c for c in wanted if not any(c in (f"{unordered.directional_stem(d)[1]}_min",
                                                f"{unordered.directional_stem(d)[1]}_max") for d in directional)]
    config = config.replace(pairs="ordered")
    table = prediction_table(table, plain + directional, config, reference=reference, mirror=mirror,
                             provenance=provenance)
    from ..features.build import FEATURES

    table, _used, _renamed = unordered.symmetrise(
        table, directional, [], computed=set(FEATURES.names()),
        reversed_values=lambda column: reversed_feature(table, column, config, mirror))
    return table


def _first_per(frame: pd.DataFrame, keys: list[str], column: str) -> pd.Series:
    return frame.dropna(subset=[column]).groupby(keys, sort=True)[column].first()


def _source_key(frame: pd.DataFrame) -> pd.Series:
    """The source side of a row's pair: the language, or for a multi-source row its source set
    (``mul {"deu": 500, "eng": 1000}``), so that two source sets of one target are two pairs."""
    from ..results import MULTI_SOURCE, SOURCE_LANGUAGES

    source = frame["source"].astype(str)
    if SOURCE_LANGUAGES not in frame.columns:
        return source
    multi = (source == MULTI_SOURCE) & frame[SOURCE_LANGUAGES].notna()
    return source.where(~multi, MULTI_SOURCE + " " + frame[SOURCE_LANGUAGES].astype(str))


def dataset_covariates(table: pd.DataFrame, columns: list[str], data: pd.DataFrame | None) -> pd.DataFrame:
    """Fill dataset covariates (columns the fit took from the dataset, not from the feature builder).

    ``same_language`` is ``source == target``. Otherwise the value comes from the fit's own table
    (``results.csv``): the pair's value when the fit saw the pair (for a multi-source row: the same
    target and the same ``source_languages``); else, for a per-language column
    ``source_X``/``target_X``, the language's value on either side; for ``same_X``, whether the two
    languages' ``X`` agree (neither for the source side of a multi-source row, which is no one
    language). What none of these gives stays missing (and so does the prediction).
    """
    from ..results import MULTI_SOURCE

    table = table.copy()
    multi = (table["source"].astype(str) == MULTI_SOURCE).to_numpy()
    for col in columns:
        if col == "same_language":
            table[col] = (table["source"] == table["target"]).astype(float)
            continue
        if data is None or col not in data.columns:
            raise InputError(f"column {col!r} came from the fit's dataset and the fit folder has no results.csv with "
                             "it: give it in the pairs file", column=col)
        keyed = data.assign(_source_key=_source_key(data))
        by_pair = _first_per(keyed, ["_source_key", "target"], col)
        index = pd.MultiIndex.from_arrays([_source_key(table), table["target"]])
        values = pd.Series(by_pair.reindex(index).to_numpy(), index=table.index)
        side, _, stem = col.partition("_")
        if side in ("source", "target", "same") and {f"source_{stem}", f"target_{stem}"} <= set(data.columns):
            per_language = pd.concat([_first_per(data, ["source"], f"source_{stem}"),
                                      _first_per(data, ["target"], f"target_{stem}")])
            per_language = per_language[~per_language.index.duplicated()]
            per_language = per_language[per_language.index != MULTI_SOURCE]
            if side == "same":
                left, right = table["source"].map(per_language), table["target"].map(per_language)
                guess = (left == right).astype(float).where(left.notna() & right.notna())
            else:
                guess = table[side].map(per_language)
            if side != "target":
                guess = guess.where(~multi)
            values = values.where(values.notna(), guess)
        table[col] = pd.to_numeric(values, errors="coerce") if values.map(
            lambda v: v is None or isinstance(v, (bool, int, float))).all() else values
    return table


def sorted_results(data: pd.DataFrame) -> pd.DataFrame:
    """The results table in row-key order (as results.csv holds it)."""
    keys = [c for c in ROW_KEYS if c in data.columns]
    return data.sort_values(keys).reset_index(drop=True)


__all__ = ["ModelTable", "model_table", "multisource_features", "grouping_columns", "tree_columns", "prediction_table",
           "column_origin", "add_features", "add_pair_features", "apply_subset", "complete_rows", "rows_used_text",
           "default_formula", "dataset_covariates", "sorted_results"]
