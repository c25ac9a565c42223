"""One table of language-pair features: :func:`build_pair_features`.

Each feature column is named for what it is; its definition lives in the module computing it:

- :mod:`xltstats.features.uriel`: URIEL distances (``syntactic_distance``, ...), WALS/PHOIBLE
  observed-feature variants with ``<name>_coverage``, ``same_family``, ``same_genus``;
- :mod:`xltstats.features.grambank`: ``morphological_distance`` (+ ``_coverage``) from Grambank;
- :mod:`xltstats.features.ud_morphology`: ``morphological_distance_ud`` from UD PUD treebanks;
- :mod:`xltstats.features.lexical`: lexical similarity on parallel text (UDHR or PUD), with
  ``<measure>_units`` (aligned units used);
- :mod:`xltstats.features.data_sizes`: pre-training shares, ``same_script`` and the fine-tuning
  example counts passed through.

Missing values stay NaN (never 0).  Results are cached in ``cache_dir()/features`` keyed by the
pairs, the columns, the options and the versions of the data behind them.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import warnings
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_write_with
from ..errors import ConfigError, InputError
from ..paths import cache_dir
from ..registry import Registry
from . import data_sizes, grambank, grambank_impute, uriel

LEXICAL_MEASURES = ("word_overlap", "subword_overlap", "char_ngram_similarity",
                    "normalised_edit_distance")
UD_COLUMNS = ("morphological_distance_ud", "feats_per_token_diff", "feats_per_token_source",
              "feats_per_token_target")

FEATURE_GROUPS: dict[str, list[str]] = {
    "syntax": ["syntactic_distance", "syntactic_distance_wals"],
    "phonology": ["phonological_distance", "inventory_distance", "phonological_distance_wals",
                  "inventory_distance_phoible"],
    "morphology": ["morphological_distance", "morphological_distance_ud"],
    "lexical": ["word_overlap", "char_ngram_similarity", "normalised_edit_distance",
                "subword_overlap"],
    "data": ["source_pretrain_share", "target_pretrain_share", "target_in_pretraining",
             "same_script", "n_source_examples", "n_target_examples"],
    "genealogy_geography": ["genetic_distance", "geographic_distance", "same_family",
                            "same_genus"],
}
"""Feature columns by what they measure, for grouped model comparisons.  ``featural_distance``
(syntax + phonology + inventory together) is in no group, to keep groups from overlapping; ask
for it by name."""

# Needs no corpus download and no tokenizer: what features=None gives.
DEFAULT_FEATURES = (
    list(uriel.KNN_DISTANCES) + list(uriel.OBSERVED_DISTANCES) + ["same_family", "same_genus",
                                                                  "morphological_distance"]
    + list(data_sizes.DATA_COLUMNS) + list(data_sizes.PASS_THROUGH_COLUMNS)
)
# companion columns that come with a feature
_COMPANIONS = {**{c: [f"{c}_coverage"] for c in uriel.OBSERVED_DISTANCES},
               "morphological_distance": ["morphological_distance_coverage"],
               **{m: [f"{m}_units"] for m in LEXICAL_MEASURES}}
ALL_FEATURES = tuple(dict.fromkeys(
    list(uriel.KNN_DISTANCES) + list(uriel.OBSERVED_DISTANCES) + ["same_family", "same_genus",
                                                                  "morphological_distance"]
    + list(UD_COLUMNS) + list(LEXICAL_MEASURES) + list(data_sizes.DATA_COLUMNS)
    + list(data_sizes.PASS_THROUGH_COLUMNS)))
_URIEL_BASED = set(uriel.URIEL_COLUMNS)

#: Every feature column the builder computes, registered with its group ("" when in none).
FEATURES: Registry[str] = Registry("feature")
for _column in ALL_FEATURES:
    FEATURES.add(_column, next((g for g, cols in FEATURE_GROUPS.items() if _column in cols), ""))
_CACHE_VERSION = 8


def feature_group(column: str) -> str | None:
    """The group of a feature column (companions count with their feature), None if none."""
    for base, companions in _COMPANIONS.items():
        if column in companions:
            column = base
    for group, columns in FEATURE_GROUPS.items():
        if column in columns:
            return group
    return None


def resolve_features(features=None, *, tokenizer_given: bool = True) -> list[str]:
    """Feature column names from group names, column names or ``"all"`` (companions included).

    Without a tokenizer (``tokenizer_given=False``) the ``lexical`` group and ``"all"`` leave out
    ``subword_overlap``, which needs one; naming it explicitly still asks for it.
    """
    if features is None:
        wanted = list(DEFAULT_FEATURES)
    else:
        if isinstance(features, str):
            features = [f for f in features.split(",") if f.strip()]
        wanted = []
        for item in features:
            name = str(item).strip()
            if name == "all" or name in FEATURE_GROUPS:
                expanded = ALL_FEATURES if name == "all" else FEATURE_GROUPS[name]
                wanted.extend(c for c in expanded
                              if tokenizer_given or c != "subword_overlap")
            elif name in FEATURES:
                wanted.append(name)
            elif any(name in c for c in _COMPANIONS.values()):
                wanted.append(next(b for b, c in _COMPANIONS.items() if name in c))
            else:
                known = list(FEATURE_GROUPS) + list(ALL_FEATURES) + ["all"]
                near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(near)}?" if near else ""
                raise InputError(f"unknown feature or feature group '{name}'{hint} "
                                 f"(groups: {', '.join(FEATURE_GROUPS)}; 'all' for every feature)",
                                 column="features")
    out = []
    for name in dict.fromkeys(wanted):
        out.append(name)
        out.extend(_COMPANIONS.get(name, []))
    return list(dict.fromkeys(out))


# --- pairs ----------------------------------------------------------------------------------

def _to_iso(code: str) -> str:
    """ISO 639-3 via :func:`xltstats.languages.to_iso639_3` (retired codes such as ``cti`` map
    to their SIL replacement, ``ctu``); a code only URIEL knows is kept as it is."""
    from ..languages import LanguageCodeError, to_iso639_3

    try:
        return to_iso639_3(code)
    except LanguageCodeError:
        if code.strip().lower() in uriel._language_index():
            return code.strip().lower()
        raise


def _normalise(code, row, column, file=None) -> str:
    from ..languages import LanguageCodeError

    if code is None or (isinstance(code, float) and np.isnan(code)):
        raise InputError("missing language code", file=file, row=row, column=column)
    try:
        return _to_iso(str(code))
    except LanguageCodeError as error:
        raise InputError(str(error), file=file, row=row, column=column) from None


def pairs_frame(pairs, *, file=None) -> pd.DataFrame:
    """``source``, ``target`` (ISO 639-3) and the example counts if given, one row per input pair.

    ``pairs``: a DataFrame with ``source`` and ``target`` columns (optionally
    ``n_source_examples``/``n_target_examples``), a list of ``(source, target)`` tuples, or a list
    of language codes (all ordered pairs, same-language pairs included).
    """
    if isinstance(pairs, pd.DataFrame):
        missing = [c for c in ("source", "target") if c not in pairs.columns]
        if missing:
            raise InputError(f"pairs table has no column '{missing[0]}'", file=file,
                             column=missing[0])
        keep = ["source", "target"] + [c for c in data_sizes.PASS_THROUGH_COLUMNS
                                       if c in pairs.columns]
        frame = pairs[keep].reset_index(drop=True).copy()
        for c in keep[2:]:
            values = pd.to_numeric(frame[c], errors="coerce")
            bad = values.isna() & frame[c].notna()
            if bad.any():
                k = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f"not a number: {frame[c].iloc[k]!r}", file=file, row=k + 1,
                                 column=c)
            frame[c] = values.astype("Int64") if (values.dropna() % 1 == 0).all() else values
    else:
        items = list(pairs)
        if not items:
            raise InputError("no language pairs given")
        if all(isinstance(x, str) for x in items):
            langs = []
            for code in dict.fromkeys(items):
                from ..languages import LanguageCodeError

                try:
                    langs.append(_to_iso(code))
                except LanguageCodeError as error:
                    raise InputError(str(error), column="languages") from None
            langs = list(dict.fromkeys(langs))
            rows = list(product(langs, langs))
        else:
            rows = []
            for k, pair in enumerate(items, start=1):
                if isinstance(pair, str) or not hasattr(pair, "__len__") or len(pair) != 2:
                    raise InputError(f"{pair!r} is not a (source, target) pair", row=k)
                rows.append((pair[0], pair[1]))
        frame = pd.DataFrame(rows, columns=["source", "target"], dtype=object)
    if frame.empty:
        raise InputError("no language pairs given", file=file)
    cache: dict = {}
    for column in ("source", "target"):
        values = []
        for k, code in enumerate(frame[column].tolist(), start=1):
            key = code if isinstance(code, str) else repr(code)
            if key not in cache:
                cache[key] = _normalise(code, k, column, file)
            values.append(cache[key])
        frame[column] = pd.array(values, dtype=object)
    return frame


def _is_language_list(pairs) -> bool:
    return (not isinstance(pairs, pd.DataFrame) and isinstance(pairs, (list, tuple))
            and all(isinstance(x, str) for x in pairs))


def _check_uriel(frame: pd.DataFrame, file=None, languages_only: bool = False) -> None:
    known = uriel._language_index()
    if languages_only:
        for code in sorted(set(frame["source"]) | set(frame["target"])):
            if code not in known:
                raise InputError(uriel.unknown_language_message(code), column="languages")
        return
    for column in ("source", "target"):
        for k, code in enumerate(frame[column].tolist(), start=1):
            if code not in known:
                raise InputError(uriel.unknown_language_message(code), file=file, row=k,
                                 column=column)


# --- cache ----------------------------------------------------------------------------------

def _package_tables_stamp() -> str:
    """Hash of the package's own tables behind the features (corpus choices, pre-training
    figures), so that editing one invalidates cached results."""
    from ..paths import package_data

    h = hashlib.sha256()
    for name in ("corpora.yaml", *data_sizes.PRETRAINING_TABLES.values()):
        h.update(Path(package_data(name)).read_bytes())
    return h.hexdigest()[:16]


def _cache_key(keys: pd.DataFrame, columns, options: dict) -> str | None:
    if options.get("tokenizer") is not None and not isinstance(options["tokenizer"], str):
        return None  # a tokenizer object has no stable identity
    from .. import __version__

    h = hashlib.sha256()
    stamp = {"v": _CACHE_VERSION, "xltstats": __version__, "uriel": uriel._source_stamp(),
             "tables": _package_tables_stamp(),
             "urielplus": grambank.urielplus_version(),
             "columns": list(columns),
             "options": {k: (None if v is None else str(v)) for k, v in sorted(options.items())}}
    h.update(json.dumps(stamp, sort_keys=True).encode())
    h.update(pd.util.hash_pandas_object(keys.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()[:32]


def _cache_read(key):
    if key is None:
        return None
    path = cache_dir() / "features" / f"{key}.parquet"
    if path.exists():
        try:
            return pd.read_parquet(path)
        except Exception:  # a damaged cache entry is rebuilt
            return None
    return None


def _cache_write(key, df: pd.DataFrame) -> None:
    if key is None:
        return
    folder = cache_dir() / "features"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_with(folder / f"{key}.parquet", lambda tmp: df.to_parquet(tmp, index=False))
    except OSError:
        pass


# --- build ----------------------------------------------------------------------------------

def build_pair_features(pairs, features=None, *, model: str = "xlm-r", tokenizer=None,
                        corpus: str = "udhr", mirror=None, on_unknown: str = "error",
                        cache: bool = True, file=None, morphology_imputation: str = "none") -> pd.DataFrame:
    """Features of language pairs, one row per distinct pair.

    Parameters
    ----------
    pairs
        DataFrame with ``source``/``target`` (a results table will do), list of
        ``(source, target)`` tuples, or list of languages (all ordered pairs, including
        same-language pairs).  Codes are normalised to ISO 639-3.
    features
        Group names (:data:`FEATURE_GROUPS`), column names, or ``"all"``; a list or a
        comma-separated string.  Default: every feature that needs no corpus or tokenizer
        (:data:`DEFAULT_FEATURES`).  Companion columns (``_coverage``, ``_units``) come along.
    model
        Which pre-training table the data features use (``"xlm-r"`` or ``"mt5"``).
    tokenizer, corpus, mirror
        Passed to the lexical measures (``subword_overlap`` needs ``tokenizer``); ``mirror``
        also to the UD morphology measure.
    on_unknown
        ``"error"`` (default): a language URIEL does not cover raises :class:`InputError` (naming
        it, with near codes) when a URIEL-based feature is asked for; ``"nan"``: its URIEL
        features are NaN.
    cache
        Read and write the result cache (``cache_dir()/features``).
    morphology_imputation
        ``"none"`` (default) or ``"softimpute"``: ``morphological_distance`` over Grambank vectors
        completed as URIEL+ completes them (:mod:`xltstats.features.grambank_impute`), with
        ``morphological_distance_imputed`` (imputed features the pair used) and
        ``morphological_distance_confidence`` (their mean held-out accuracy) beside it.

    Returns
    -------
    DataFrame with ``source``, ``target``, the example-count columns when the input had them and
    were asked for, and one float column per feature, sorted by the key columns.  Missing values
    are NaN.  A language URIEL does not cover raises :class:`InputError` when a URIEL-based
    feature is asked for.
    """
    columns = resolve_features(features, tokenizer_given=tokenizer is not None)
    frame = pairs_frame(pairs, file=file)
    pass_through = [c for c in data_sizes.PASS_THROUGH_COLUMNS if c in columns and c in frame]
    key_columns = ["source", "target"] + pass_through
    keys = (frame[key_columns].drop_duplicates()
            .sort_values(key_columns, kind="mergesort", na_position="last")
            .reset_index(drop=True))
    feature_columns = [c for c in columns if c not in data_sizes.PASS_THROUGH_COLUMNS]
    if on_unknown not in ("error", "nan"):
        raise InputError(f"on_unknown must be 'error' or 'nan', not {on_unknown!r}",
                         column="on_unknown")
    if on_unknown == "error" and any(c in _URIEL_BASED for c in feature_columns):
        _check_uriel(frame, file=file, languages_only=_is_language_list(pairs))
    if any(c in data_sizes.DATA_COLUMNS for c in feature_columns):
        data_sizes.model_table_key(model)  # fail early on an unknown model

    options = {"model": data_sizes.model_table_key(model) if any(
        c in ("source_pretrain_share", "target_pretrain_share", "target_in_pretraining")
        for c in feature_columns) else None,
        "tokenizer": tokenizer if "subword_overlap" in feature_columns else None,
        "corpus": corpus if any(c in LEXICAL_MEASURES for c in feature_columns) else None}
    imputing = morphology_imputation != "none" and "morphological_distance" in feature_columns
    if morphology_imputation not in grambank_impute.METHODS:
        raise InputError(f"morphology_imputation must be one of {', '.join(grambank_impute.METHODS)}, not "
                         f"{morphology_imputation!r}", column="morphology_imputation")
    if imputing:  # only then: the default's cache key stays as it was
        options["morphology_imputation"] = morphology_imputation
        feature_columns = feature_columns + [c for c in grambank_impute.IMPUTED_COLUMNS
                                             if c not in feature_columns]
    key = _cache_key(keys, feature_columns, options) if cache else None
    cached = _cache_read(key)
    if cached is not None and list(cached.columns) == key_columns + feature_columns:
        return cached

    result = keys.copy()
    result["source"] = result["source"].astype(str)
    result["target"] = result["target"].astype(str)
    src, tgt = keys["source"].tolist(), keys["target"].tolist()
    values: dict[str, np.ndarray] = {}

    uriel_cols = [c for c in feature_columns if c in _URIEL_BASED]
    if uriel_cols:
        known = uriel._language_index()
        covered = np.array([s in known and t in known for s, t in zip(src, tgt)], dtype=bool)
        part = uriel.uriel_pair_features([s for s, ok in zip(src, covered) if ok],
                                         [t for t, ok in zip(tgt, covered) if ok], uriel_cols)
        for c in uriel_cols:
            full = np.full(len(src), np.nan)
            full[covered] = part[c]
            values[c] = full
    if any(c in grambank.MORPHOLOGY_COLUMNS for c in feature_columns):
        try:
            values.update(grambank.morphological_pair_features(src, tgt))
        except ConfigError:
            if features is not None:
                raise
            # the default set should not fail on the optional Grambank data: NaN, with a warning
            warnings.warn("urielplus is not installed: morphological_distance is NaN "
                          "(pip install urielplus)", stacklevel=2)
            values.update({c: np.full(len(src), np.nan) for c in grambank.MORPHOLOGY_COLUMNS})
        if imputing:
            values.update(grambank_impute.imputed_pair_features(src, tgt, morphology_imputation))
    data_cols = [c for c in feature_columns if c in data_sizes.DATA_COLUMNS]
    if data_cols:
        values.update(data_sizes.data_pair_features(src, tgt, model, data_cols))
    ud_cols = [c for c in feature_columns if c in UD_COLUMNS]
    if ud_cols:
        from .ud_morphology import ud_morphology_features

        ud = ud_morphology_features(list(zip(src, tgt)), mirror=mirror)
        values.update({c: ud[c].to_numpy(dtype=float) for c in ud_cols})
    lexical_cols = [c for c in feature_columns if c in LEXICAL_MEASURES]
    if lexical_cols:
        from .lexical import lexical_features

        lex = lexical_features(list(zip(src, tgt)), measures=lexical_cols, tokenizer=tokenizer,
                               corpus=corpus, mirror=mirror)
        for c in lexical_cols:
            values[c] = lex[c].to_numpy(dtype=float)
            values[f"{c}_units"] = lex[f"{c}_units"].to_numpy(dtype=float)

    for c in feature_columns:
        result[c] = np.asarray(values[c], dtype=np.float64)
    _cache_write(key, result)
    return result


def feature_coverage(df: pd.DataFrame) -> pd.DataFrame:
    """Per feature column: group, pairs, pairs with a value, share, languages with no value.

    ``languages_without_value`` counts the languages (as source or target) all of whose pairs
    lack the feature.
    """
    key = {"source", "target", *data_sizes.PASS_THROUGH_COLUMNS}
    rows = []
    languages = sorted(set(df["source"]) | set(df["target"]))
    for column in [c for c in df.columns if c not in key] + [
            c for c in data_sizes.PASS_THROUGH_COLUMNS if c in df.columns]:
        present = df[column].notna().to_numpy()
        seen = set(df.loc[present, "source"]) | set(df.loc[present, "target"])
        rows.append({
            "feature": column,
            "group": feature_group(column) or "",
            "pairs": int(len(df)),
            "pairs_with_value": int(present.sum()),
            "coverage": float(present.mean()) if len(df) else float("nan"),
            "languages_without_value": sum(1 for lang in languages if lang not in seen),
        })
    return pd.DataFrame(rows, columns=["feature", "group", "pairs", "pairs_with_value",
                                       "coverage", "languages_without_value"])
