"""The sources a fit used, as BibTeX (``xltstats/data/references.bib``) and as text.

:func:`used_keys` reads a fit's manifest (features used, formulas, configuration) and returns the
BibTeX keys of the data and methods behind it, in a fixed order:

==============================================  ===============================================
what the fit used                               cited
==============================================  ===============================================
URIEL distances, ``same_family``/``same_genus``  URIEL and lang2vec (Littell et al. 2017)
``morphological_distance`` (Grambank)            Grambank (Skirgård et al. 2023), URIEL+ (Khan
                                                 et al. 2025), whose files ship the Grambank data
lexical measures on the UDHR                     UDHR in Unicode
lexical measures on PUD, ``*_ud`` morphology     Universal Dependencies (de Marneffe et al. 2021;
                                                 Nivre et al. 2020), PUD (Zeman et al. 2017)
``same_script``                                  CLDR likely scripts; UDHR (scripts beyond CLDR)
pre-training shares (xlm-r, mt5 tables)          CC-100 (Conneau et al. 2020), mC4 (Xue et al.
                                                 2021)
OLS with HC3 / two-way clustered errors          MacKinnon & White 1985 / Cameron, Gelbach &
                                                 Miller 2011 and Cameron & Miller 2015 (too few
                                                 clusters: HC3); statsmodels
dominance analysis                               Budescu 1993
mixed model                                      lme4 (Bates et al. 2015); Nakagawa &
                                                 Schielzeth 2013, Nakagawa et al. 2017 (R²)
cross-validation / ranking                       LightGBM (Ke et al. 2017), the tree baseline
                                                 and LambdaRank
==============================================  ===============================================

The fit writes the entries to ``references.bib`` in its folder and their keys to the manifest
(``references``); the report's methods section lists them.
"""
from __future__ import annotations

import functools
import re

from .paths import package_data

__all__ = ["references", "used_keys", "bibtex", "citation_text", "write_references",
           "REFERENCES_FILE"]

REFERENCES_FILE = "references.bib"

URIEL_FEATURES = {
    "syntactic_distance", "phonological_distance", "inventory_distance", "featural_distance",
    "genetic_distance", "geographic_distance", "same_family", "same_genus",
}
LEXICAL_FEATURES = {"word_overlap", "subword_overlap", "char_ngram_similarity",
                    "normalised_edit_distance"}
PRETRAINING_FEATURES = {"source_pretrain_share", "target_pretrain_share", "target_in_pretraining"}


@functools.lru_cache(maxsize=1)
def references() -> dict[str, str]:
    """Every shipped BibTeX entry, by key (entries as written in the file)."""
    text = package_data(REFERENCES_FILE).read_text(encoding="utf-8")
    entries: dict[str, str] = {}
    for match in re.finditer(r"^@\w+\{([^,\s]+),.*?^\}", text, flags=re.M | re.S):
        entries[match.group(1)] = match.group(0)
    return entries


def _base(name: str) -> str:
    """A used column without its companion suffix (``syntactic_distance_wals`` -> itself)."""
    for suffix in ("_coverage", "_units"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def used_keys(manifest: dict, *, models=None, trees: bool | None = None) -> list[str]:
    """BibTeX keys of the sources behind a fit (see the module docstring); unknown parts of the
    manifest are ignored.  ``models``: the model names of the fitted table (which pre-training
    table the shares came from; None: both are cited); ``trees``: whether LightGBM models were
    fitted (None: from the configuration's cross-validation and ranking settings)."""
    config = manifest.get("config") or {}
    used = {_base(str(c)) for c in manifest.get("features_used") or []}
    formulas = manifest.get("formulas") or {}
    keys: list[str] = []

    def add(*names: str) -> None:
        keys.extend(n for n in names if n not in keys)

    if any(c in URIEL_FEATURES or re.sub(r"_(wals|phoible)$", "", c) in URIEL_FEATURES
           for c in used):
        add("littell-etal-2017-uriel")
    if "morphological_distance" in used:
        add("skirgard-etal-2023-grambank", "khan-etal-2025-urielplus")
    corpus = str(config.get("lexical_corpus", "udhr"))
    # a dataset's own word_overlap (LangRank) is the dataset's, not computed from a corpus
    computed_lexical = used & LEXICAL_FEATURES
    if computed_lexical and corpus == "udhr":
        add("unicode-udhr")
    if (computed_lexical and corpus == "pud") or "morphological_distance_ud" in used:
        add("de-marneffe-etal-2021-universal", "nivre-etal-2020-universal", "zeman-etal-2017-conll")
    if "same_script" in used:
        add("unicode-cldr", "unicode-udhr")
    if used & PRETRAINING_FEATURES:
        from .features.data_sizes import pretraining_model_for

        table = pretraining_model_for(models) if models is not None else None
        if table in (None, "xlm-r"):
            add("conneau-etal-2020-unsupervised")
        if table in (None, "mt5"):
            add("xue-etal-2021-mt5")
    if formulas.get("ols") or used:
        cov = str((config.get("ols") or {}).get("cov_type", "HC3"))
        add("seabold-perktold-2010-statsmodels")
        if cov == "HC3":
            add("mackinnon-white-1985")
        elif cov == "cluster2":
            # and the rule that few clusters fall back to HC3
            add("cameron-gelbach-miller-2011", "cameron-miller-2015")
        if config.get("groups"):
            add("budescu-1993-dominance")
    if formulas.get("mixed"):
        add("bates-etal-2015-lme4", "nakagawa-schielzeth-2013-r2", "nakagawa-etal-2017-r2")
    if trees is None:
        cv = config.get("cv") or {}
        ranking = config.get("ranking") or {}
        trees = bool(cv.get("schemes")) or ranking.get("enabled", "auto") is not False
    if trees:
        add("ke-etal-2017-lightgbm")
    add("sil-iso639-3-retirements")
    return [k for k in keys if k in references()]


def bibtex(keys) -> str:
    """The entries of ``keys`` (in that order), separated by blank lines."""
    entries = references()
    missing = [k for k in keys if k not in entries]
    if missing:
        raise KeyError(f"no BibTeX entry {missing[0]!r} in {REFERENCES_FILE}")
    return "\n\n".join(entries[k] for k in keys) + "\n"


def _field(entry: str, name: str) -> str:
    match = re.search(rf"^\s*{name}\s*=\s*\{{(.*)\}},?\s*$", entry, flags=re.M | re.I)
    return match.group(1).strip() if match else ""


def _plain(text: str) -> str:
    """LaTeX accents and braces removed for text (``Skirg{\\aa}rd`` -> ``Skirgård``)."""
    accents = {r"{\aa}": "å", r'{\"o}': "ö", r'{\"a}': "ä", r"{\'a}": "á", r"{\v{c}}": "č",
               r"{\u{g}}": "ğ", r"\&": "&", r"$^2$": "²"}
    for latex, char in accents.items():
        text = text.replace(latex, char)
    return re.sub(r"[{}]", "", text).replace("\\_", "_")


def citation_text(key: str) -> str:
    """``Authors (year). Title. Venue.`` for one entry, plain text."""
    entry = references()[key]
    authors = [a.strip() for a in _plain(_field(entry, "author")).split(" and ")]
    surnames = [a.split(",")[0] for a in authors if a]
    if "others" in surnames or len(surnames) > 3:
        who = f"{surnames[0]} et al."
    elif len(surnames) == 3:
        who = f"{surnames[0]}, {surnames[1]} and {surnames[2]}"
    else:
        who = " and ".join(surnames)
    year = _field(entry, "year")
    venue = _plain(_field(entry, "journal") or _field(entry, "booktitle")
                   or _field(entry, "howpublished"))
    venue = re.sub(r"\\url(.*?)(;|$)", lambda m: m.group(1).strip("{}") + m.group(2), venue)
    doi = _field(entry, "doi")
    parts = [f"{who} ({year})." if year else f"{who}.", _plain(_field(entry, "title")) + "."]
    if venue:
        parts.append(venue + ".")
    if doi:
        parts.append(f"doi:{doi}")
    return " ".join(parts)


def write_references(fit_dir, manifest: dict) -> list[str]:
    """Write ``references.bib`` (the entries :func:`used_keys` picks) into a fit folder; returns
    the keys.  Models come from the folder's ``results.csv``; LightGBM is cited when the folder
    has ``cv.csv`` or a ranking table."""
    from pathlib import Path

    import pandas as pd

    fit_dir = Path(fit_dir)
    models = None
    results = fit_dir / "results.csv"
    if results.is_file():
        try:
            models = sorted(pd.read_csv(results, usecols=["model"], dtype=str)["model"]
                            .dropna().unique())
        except (ValueError, OSError):
            models = None
    trees = (fit_dir / "cv.csv").is_file() or any((fit_dir / "tables").glob("ranking*.csv"))
    keys = used_keys(manifest, models=models, trees=trees)
    (fit_dir / REFERENCES_FILE).write_text(bibtex(keys), encoding="utf-8")
    return keys
