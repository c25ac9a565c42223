"""Morphological distance from Grambank, as shipped by the ``urielplus`` package.

URIEL+ (Khan et al., 2025; PyPI ``urielplus``) ships Grambank (Skirgård et al., 2023) recoded into
URIEL-style binary features (``database/urielplus_csvs/grambank_data.csv``: one row per Glottocode,
values ``1``/``0``, ``-1`` for missing or ``?``).  URIEL+ divides the 196 Grambank columns into
121 syntactic ``S_`` and 75 morphological ``M_`` features; its ``feature_mappings.json`` maps each
``M_`` column to exactly one Grambank parameter.  The 75 morphological parameters are GB039
GB041-GB044 GB046-GB049 GB068-GB073 GB081-GB084 GB089-GB096 GB098 GB099 GB103 GB104 GB107-GB111
GB113-GB116 GB137 GB138 GB147-GB149 GB151 GB152 GB155 GB165 GB166 GB187 GB188 GB192 GB196-GB198
GB296 GB300 GB312 GB314 GB315 GB321 GB333-GB336 GB400 GB402 GB403 GB415 GB431 GB433 GB519-GB521
(nominal number, derivation, case, tense/aspect/mood marking, argument indexing, applicatives,
negation, noun class marking, ...); :func:`morphological_features` lists them with URIEL+ column
and Grambank question.  This module uses exactly those 75 ``M_`` features, the same subset URIEL+'s own
``new_morphological_distance`` uses.

``morphological_distance`` is the cosine distance over the features observed for both languages
(URIEL+'s definition with ``distance_metric="cosine"``), computed with array operations instead
of URIEL+'s per-pair Python loops, and ``morphological_distance_coverage`` is the share of the 75
features observed for both.  NaN when no feature is observed for both languages, or when one
language has no marked (value 1) feature among those shared (cosine distance undefined).

ISO 639-3 codes are mapped to Glottocodes with URIEL+'s ``uriel_glottocode_map.csv`` (the mapping
URIEL+ uses for the URIEL languages); a language whose Glottocode Grambank does not describe gets
NaN.  The map gives no Glottocode for ISO 639-3 macrolanguage codes (``est``, ``ara``, ``zho``, ...);
for those the main individual language stands in (:data:`MACROLANGUAGE_STAND_IN`: ``est`` ->
``ekk``, ``ara`` -> ``arb``, ``zho`` -> ``cmn``, ...), as is usual for NLP data labelled with the
macrolanguage code.

A few languages are in Grambank only under a variety whose Glottocode the map does not give them
(:data:`GRAMBANK_VARIETY_STAND_IN`): Croatian, Serbian, Bosnian and Montenegrin are described
together as Serbian-Croatian-Bosnian (``sout1528``, the ``hbs`` entry), Karelian as Northern
Karelian (``nort2673``, a dialect), and South Levantine Arabic (``ajp``, merged into ``apc`` by ISO
639-3 in 2023) as Levantine Arabic (``nort3139``).  Urdu, which Grambank lacks, takes Hindi's
description (``hind1269``): the two are one grammar (Hindustani) written in two scripts with
partly different vocabulary, and Grambank's questions are about grammar.  German (``stan1295``) and Spanish (``stan1288``)
are not in this Grambank release at all: their distances are NaN.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError

# ISO 639-3 macrolanguage -> the individual language NLP data with that label is written in
MACROLANGUAGE_STAND_IN = {
    "ara": "arb", "aze": "azj", "est": "ekk", "fas": "pes", "grn": "gug", "kon": "kng",
    "kur": "kmr", "lav": "lvs", "mon": "khk", "msa": "zsm", "nep": "npi", "orm": "gaz",
    "ori": "ory", "pus": "pbu", "que": "quy", "sqi": "als", "swa": "swh", "uzb": "uzn",
    "yid": "ydd", "zho": "cmn",
}

# ISO 639-3 -> the Glottocode of the Grambank variety describing it, where the map's own
# Glottocode has no Grambank row
GRAMBANK_VARIETY_STAND_IN = {
    "hrv": "sout1528", "srp": "sout1528", "bos": "sout1528", "cnr": "sout1528",
    "krl": "nort2673", "ajp": "nort3139", "urd": "hind1269",
}

MORPHOLOGY_COLUMNS = ("morphological_distance", "morphological_distance_coverage")


def urielplus_csv_dir() -> Path:
    try:
        root = resources.files("urielplus")
    except ModuleNotFoundError as exc:
        raise ConfigError("the morphological (Grambank) features need the 'urielplus' package, "
                          "which ships the Grambank data: pip install urielplus") from exc
    return Path(str(root.joinpath("database", "urielplus_csvs")))


def urielplus_version() -> str | None:
    """The installed urielplus version (it versions the Grambank data), None when not installed."""
    from importlib import metadata

    try:
        return metadata.version("urielplus")
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def morphological_features() -> pd.DataFrame:
    """The Grambank features counted as morphological: URIEL+ column, Grambank ID, question."""
    mappings = json.loads((urielplus_csv_dir() / "feature_mappings.json").read_text("utf-8"))
    rows = []
    for entry in mappings:
        if entry.get("database") != "GRAMBANK":
            continue
        for column in entry.get("bundled_columns", []):
            if column.startswith("M_"):
                for src in entry["source_features"]:
                    rows.append({"column": column, "grambank_id": src["id"],
                                 "question": src.get("name", "")})
    return pd.DataFrame(rows).sort_values(["grambank_id", "column"]).reset_index(drop=True)


@lru_cache(maxsize=1)
def _grambank() -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """(iso -> row, values with missing as 0, observed mask), float32, morphological columns."""
    d = urielplus_csv_dir()
    table = pd.read_csv(d / "grambank_data.csv")
    columns = [c for c in table.columns if c.startswith("M_")]
    raw = table[columns].to_numpy(dtype=np.float32)
    row_of_glottocode = {str(g): i for i, g in enumerate(table["language_id"])}
    codes = pd.read_csv(d / "uriel_glottocode_map.csv", dtype=str, keep_default_na=False)
    iso_to_row = {iso: row_of_glottocode[g] for iso, g in zip(codes["iso_code"], codes["glottocode"])
                  if g in row_of_glottocode}
    for iso, glottocode in GRAMBANK_VARIETY_STAND_IN.items():
        if iso not in iso_to_row and glottocode in row_of_glottocode:
            iso_to_row[iso] = row_of_glottocode[glottocode]
    for macro, individual in MACROLANGUAGE_STAND_IN.items():
        if macro not in iso_to_row and individual in iso_to_row:
            iso_to_row[macro] = iso_to_row[individual]
    values = np.where(raw > 0, 1.0, 0.0).astype(np.float32)
    mask = (raw >= 0).astype(np.float32)
    return iso_to_row, values, mask


def grambank_languages() -> list[str]:
    """ISO 639-3 codes with a Grambank description (through URIEL+'s Glottocode map)."""
    return sorted(_grambank()[0])


def morphological_pair_features(left_codes, right_codes) -> dict[str, np.ndarray]:
    """``morphological_distance`` and its coverage for aligned lists of ISO 639-3 codes."""
    iso_to_row, values, mask = _grambank()
    n_features = values.shape[1]
    li = np.array([iso_to_row.get(c, -1) for c in left_codes], dtype=np.int64)
    ri = np.array([iso_to_row.get(c, -1) for c in right_codes], dtype=np.int64)
    known = (li >= 0) & (ri >= 0)
    dist = np.full(len(li), np.nan)
    coverage = np.full(len(li), np.nan)
    # a language Grambank does not describe has unknown coverage with everyone: NaN, not 0
    a, b = li[known], ri[known]
    xa, xb = values[a].astype(np.float64), values[b].astype(np.float64)
    both = mask[a].astype(np.float64) * mask[b]
    shared = both.sum(axis=1)
    dot = (xa * xb * both).sum(axis=1)
    na = np.sqrt((xa * both).sum(axis=1))  # binary values: x*x == x
    nb = np.sqrt((xb * both).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 1.0 - dot / (na * nb)
    d[(shared == 0) | (na == 0) | (nb == 0)] = np.nan
    d = np.round(np.clip(d, 0.0, 2.0), 12)  # 1 - x.x/|x|^2 is ~1e-16, not 0, in floating point
    d[(a == b) & np.isfinite(d)] = 0.0
    dist[known] = d
    coverage[known] = shared / n_features
    return {"morphological_distance": dist, "morphological_distance_coverage": coverage}
