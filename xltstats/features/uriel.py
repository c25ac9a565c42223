"""URIEL typological, genealogical and geographic distances, vectorised.

The vectors come from the ``.npz`` files that lang2vec 1.1.2 ships (read directly with
:mod:`importlib.resources`; lang2vec itself is not imported because it needs ``pkg_resources``).
lang2vec 1.1.2 ships no precomputed distance files (no ``distances*.zip``); its documentation and
the URIEL paper (Littell et al., 2017) define the distances as the cosine distance between the
languages' vectors, which is what is computed here:

==========================  ===========================================================
column                      vectors (lang2vec feature set)
==========================  ===========================================================
``syntactic_distance``      ``syntax_knn`` (103 features, kNN-imputed, no missing values)
``phonological_distance``   ``phonology_knn`` (28)
``inventory_distance``      ``inventory_knn`` (158)
``featural_distance``       ``syntax_knn + phonology_knn + inventory_knn`` concatenated (289)
``genetic_distance``        ``fam`` (3,718 Glottolog clade memberships)
``geographic_distance``     ``geo`` (299 distances to fixed points on the globe)
==========================  ===========================================================

``cosine_distance(u, v) = 1 - u.v / (|u| |v|)``.  Later lang2vec releases ship precomputed URIEL
distances (``distance("syntactic", "eng", "fra")``; their README shows 0.4569); those could not be
checked here, and no variant computed from the 1.1.2 vectors reproduces that example (kNN cosine
0.188, WALS-observed cosine 0.222, angular 0.40-0.43), so they were made from other vectors or
another formula.  The values here follow the documented definition on the 1.1.2 data.  URIEL+'s own
functions (cosine metric) agree to their 4-decimal rounding on the genetic and geographic
distances, and the observed-feature computation used for the WALS variants reproduces URIEL+'s
syntactic/phonological/inventory/featural distances over its raw data (``benchmarks/features.py``).
``geographic_distance`` is the cosine distance of the ``geo`` vectors, not the great-circle
distance; it is small for most pairs (median about 0.14).  A language whose vector is all zeros (676
languages have no ``fam`` clade: isolates and unclassified languages) has no defined distance: NaN.

WALS-only variants use the observed (not imputed) values, where lang2vec marks missing values
with ``-1`` (``"--"`` in its output).  Their cosine distance uses only the features observed for
both languages, and ``<name>_coverage`` is the share of the feature set observed for both:

=====================================  ===========================================================
``syntactic_distance_wals``            ``syntax_wals`` (``S_`` features, source ``WALS``)
``phonological_distance_wals``         ``phonology_wals`` (``P_`` features, source ``WALS``)
``inventory_distance_phoible``         ``INV_`` features, union (lang2vec's ``|``: element-wise
                                       maximum of the observed values) of the seven PHOIBLE
                                       inventories; WALS has no inventory features in URIEL
=====================================  ===========================================================

``same_family`` and ``same_genus`` come from the ``fam`` vectors: a language's clades form one
path from its top-level family down; ordered by the number of member languages (a parent has at
least as many members as its child), the first is the family and the second the first-level
subgroup, which stands in for the WALS genus (Germanic, Romance/Italic, Finnic, ...).  They are NaN
when either language has no clade (no subgroup for ``same_genus``).
"""
from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..paths import cache_dir
from .._io import atomic_write_with

# column -> (file, source(s), feature prefix(es))
KNN_DISTANCES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "syntactic_distance": ("feature_predictions.npz", ("predicted",), ("S_",)),
    "phonological_distance": ("feature_predictions.npz", ("predicted",), ("P_",)),
    "inventory_distance": ("feature_predictions.npz", ("predicted",), ("INV_",)),
    "featural_distance": ("feature_predictions.npz", ("predicted",), ("S_", "P_", "INV_")),
    "genetic_distance": ("family_features.npz", ("FAM",), ("",)),
    "geographic_distance": ("geocoord_features.npz", ("GEOCOORDS",), ("",)),
}
PHOIBLE_SOURCES = ("PHOIBLE_AA", "PHOIBLE_GM", "PHOIBLE_PH", "PHOIBLE_RA", "PHOIBLE_SAPHON",
                   "PHOIBLE_SPA", "PHOIBLE_UPSID")
OBSERVED_DISTANCES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "syntactic_distance_wals": ("features.npz", ("WALS",), ("S_",)),
    "phonological_distance_wals": ("features.npz", ("WALS",), ("P_",)),
    "inventory_distance_phoible": ("features.npz", PHOIBLE_SOURCES, ("INV_",)),
}
GENEALOGY_COLUMNS = ("same_family", "same_genus")
URIEL_COLUMNS = (tuple(KNN_DISTANCES) + tuple(OBSERVED_DISTANCES)
                 + tuple(f"{c}_coverage" for c in OBSERVED_DISTANCES) + GENEALOGY_COLUMNS)


def lang2vec_data_dir() -> Path:
    return Path(str(resources.files("lang2vec").joinpath("data")))


@lru_cache(maxsize=None)
def _npz(name: str) -> dict:
    with np.load(lang2vec_data_dir() / name) as z:
        return {k: z[k] for k in z.files}


@lru_cache(maxsize=1)
def uriel_languages() -> tuple[str, ...]:
    """The ISO 639-3 codes URIEL covers (7,970), in lang2vec's order."""
    return tuple(str(x) for x in _npz("family_features.npz")["langs"])


@lru_cache(maxsize=1)
def _language_index() -> dict[str, int]:
    return {code: i for i, code in enumerate(uriel_languages())}


def _canonical_rows(langs) -> np.ndarray:
    """Row numbers that put a data file's languages into :func:`uriel_languages` order."""
    position = {str(code): i for i, code in enumerate(langs)}
    missing = [c for c in uriel_languages() if c not in position]
    if missing or len(position) != len(uriel_languages()):
        raise RuntimeError("lang2vec data files cover different languages")
    return np.array([position[c] for c in uriel_languages()], dtype=np.int64)


def _select(name: str, sources: tuple[str, ...], prefixes: tuple[str, ...]) -> np.ndarray:
    """(languages x features) float32 matrix, -1 where missing, union over several sources."""
    z = _npz(name)
    rows = _canonical_rows(z["langs"])
    feats = [str(f) for f in z["feats"]]
    cols = [j for p in prefixes for j, f in enumerate(feats) if f.startswith(p)]
    src = [int(np.where(z["sources"] == s)[0][0]) for s in sources]
    data = z["data"]
    if len(src) == 1:
        block = data[:, :, src[0]]
    else:
        block = data[:, :, src].max(axis=2)  # lang2vec's union: -1 only where every source misses
    if len(cols) != len(feats):
        block = block[:, cols]
    return np.asarray(block[rows], dtype=np.float32)


def _source_stamp() -> str:
    d = lang2vec_data_dir()
    parts = [f"{n}:{(d / n).stat().st_size}:{(d / n).stat().st_mtime_ns}"
             for n in ("feature_predictions.npz", "family_features.npz",
                       "geocoord_features.npz", "features.npz")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _atomic_save(path: Path, array: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array)

    atomic_write_with(path, write, suffix=".npy.tmp")


def _cached(key: str, build) -> np.ndarray:
    """A float32 array memory-mapped from the cache dir, built and stored on first use."""
    path = cache_dir() / "uriel" / _source_stamp() / f"{key}.npy"
    if path.exists():
        try:
            return np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            pass
    array = np.ascontiguousarray(build(), dtype=np.float32)
    try:
        _atomic_save(path, array)
    except OSError:  # a read-only cache is no reason to fail
        return array
    return np.load(path, mmap_mode="r")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); all-zero rows become NaN (cosine undefined)."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = (1.0 / norm).astype(np.float32)
        out = x * scale[:, None]
    out[norm == 0] = np.nan
    return out


@lru_cache(maxsize=None)
def unit_vectors(column: str) -> np.ndarray:
    """(7970 x d) float32 unit vectors behind a kNN/fam/geo distance column (memory-mapped)."""
    name, sources, prefixes = KNN_DISTANCES[column]
    return _cached(f"unit_{column}", lambda: _unit_rows(_select(name, sources, prefixes)))


@lru_cache(maxsize=None)
def observed_values(column: str) -> tuple[np.ndarray, np.ndarray]:
    """(values with missing set to 0, observed mask as 0/1), both float32, for a WALS-type column."""
    name, sources, prefixes = OBSERVED_DISTANCES[column]

    def build_values():
        raw = _select(name, sources, prefixes)
        return np.where(raw < 0, 0.0, raw)

    def build_mask():
        return (_select(name, sources, prefixes) >= 0).astype(np.float32)

    return (_cached(f"values_{column}", build_values), _cached(f"mask_{column}", build_mask))


def indices(codes) -> np.ndarray:
    """URIEL row numbers of ISO 639-3 codes; an unknown code is an :class:`InputError`."""
    index = _language_index()
    out = np.empty(len(codes), dtype=np.int64)
    for k, code in enumerate(codes):
        i = index.get(code)
        if i is None:
            raise InputError(unknown_language_message(code))
        out[k] = i
    return out


@lru_cache(maxsize=1)
def _uriel_names() -> dict[str, str]:
    import langcodes

    return {c: langcodes.Language.get(c).language_name("en") for c in uriel_languages()}


def near_languages(code: str, n: int = 5) -> list[str]:
    """URIEL codes close to ``code``: by name first (``hyw`` Western Armenian -> ``hye``), then by
    spelling of the code."""
    import langcodes

    names = _uriel_names()
    found: list[str] = []
    try:
        name = langcodes.Language.get(str(code)).language_name("en")
    except (ValueError, LookupError):
        name = ""
    if name and not name.startswith("Unknown"):
        words = {w for w in name.lower().replace("(", " ").replace(")", " ").split() if len(w) > 3}
        frequency: dict[str, int] = {}
        for nm in names.values():
            for w in set(nm.lower().split()):
                frequency[w] = frequency.get(w, 0) + 1
        # a rare shared word ("armenian") says more than a common one ("western")
        score = {c: sum(1.0 / frequency[w] for w in words & set(nm.lower().split()))
                 for c, nm in names.items()}
        by_name = sorted((c for c in names if score[c] > 0),
                         key=lambda c: (-score[c], -difflib.SequenceMatcher(None, name, names[c]).ratio(), c))
        found += by_name[:n]
    found += difflib.get_close_matches(str(code), uriel_languages(), n=n, cutoff=0.6)
    return [f"{c} ({names[c]})" for c in list(dict.fromkeys(found))[:n]]


def unknown_language_message(code: str) -> str:
    near = near_languages(code)
    hint = f"; near languages URIEL knows: {', '.join(near)}" if near else ""
    return f"language '{code}' is not in URIEL (lang2vec 1.1.2, {len(uriel_languages())} languages){hint}"


# --- distances ------------------------------------------------------------------------------

PAIR_CHUNK = 4096  # pairs gathered at once: bounds memory for the 3,718-dim family vectors
MAX_BLOCK_ENTRIES = 16_000_000  # up to 4,000 distinct languages: one block, then gather


def cosine_distance_pairs(column: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cosine distance for row-index pairs (vectorised in chunks, float64 result)."""
    left, right = np.asarray(left), np.asarray(right)
    out = np.empty(left.size)
    if column in SPARSE_COLUMNS:
        unit, defined = _sparse_unit(column)
        for s in range(0, left.size, PAIR_CHUNK):
            a, b = left[s:s + PAIR_CHUNK], right[s:s + PAIR_CHUNK]
            dot = np.asarray(unit[a].multiply(unit[b]).sum(axis=1), dtype=np.float64).ravel()
            out[s:s + PAIR_CHUNK] = np.where(defined[a] & defined[b], 1.0 - dot, np.nan)
    else:
        u = unit_vectors(column)
        for s in range(0, left.size, PAIR_CHUNK):
            a = np.asarray(u[left[s:s + PAIR_CHUNK]], dtype=np.float64)
            b = np.asarray(u[right[s:s + PAIR_CHUNK]], dtype=np.float64)
            out[s:s + PAIR_CHUNK] = 1.0 - np.einsum("ij,ij->i", a, b)
    return np.clip(out, 0.0, 2.0)


def observed_distance_pairs(column: str, left: np.ndarray, right: np.ndarray):
    """(cosine distance over features observed for both, coverage) for row-index pairs.

    Distance is NaN where no feature is observed for both, or where either language's values on
    the shared features are all zero.
    """
    values, mask = observed_values(column)
    xa, xb = np.asarray(values[left], np.float64), np.asarray(values[right], np.float64)
    ma, mb = np.asarray(mask[left], np.float64), np.asarray(mask[right], np.float64)
    both = ma * mb
    shared = both.sum(axis=1)
    dot = (xa * xb * both).sum(axis=1)
    na = np.sqrt((xa * xa * both).sum(axis=1))
    nb = np.sqrt((xb * xb * both).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = 1.0 - dot / (na * nb)
    dist[(shared == 0) | (na == 0) | (nb == 0)] = np.nan
    return np.clip(dist, 0.0, 2.0), shared / values.shape[1]


SPARSE_COLUMNS = ("genetic_distance",)  # clade memberships: ~0.2% non-zero


@lru_cache(maxsize=None)
def _sparse_unit(column: str):
    """(CSR float32 unit vectors with undefined rows zeroed, mask of defined rows)."""
    from scipy import sparse

    u = np.asarray(unit_vectors(column))
    defined = ~np.isnan(u[:, 0])
    return sparse.csr_matrix(np.where(defined[:, None], u, 0.0).astype(np.float32)), defined


def distance_block(column: str, rows, cols=None) -> np.ndarray:
    """A float32 block (rows x cols) of the all-pairs distance matrix of a kNN/fam/geo column.

    ``rows``/``cols`` are URIEL row numbers or slices (``cols=None``: every language).
    """
    if column in SPARSE_COLUMNS:
        unit, defined = _sparse_unit(column)
        a = unit[rows]
        b = unit if cols is None else unit[cols]
        similarity = np.asarray((a @ b.T).toarray(), dtype=np.float32)
        block = np.subtract(np.float32(1.0), similarity, out=similarity)
        block[~defined[rows]] = np.nan
        block[:, ~(defined if cols is None else defined[cols])] = np.nan
    else:
        u = unit_vectors(column)
        a = np.asarray(u[rows])
        b = np.asarray(u if cols is None else u[cols])
        block = a @ b.T
        np.subtract(np.float32(1.0), block, out=block)
    np.clip(block, 0.0, 2.0, out=block)
    return block


def observed_block(values: np.ndarray, mask: np.ndarray, rows, cols=None):
    """(cosine distance over features observed for both, coverage) blocks, by matrix products.

    ``values`` has missing entries set to 0 and ``mask`` is 1 where observed.
    """
    xa, ma = np.asarray(values[rows]), np.asarray(mask[rows])
    xb = np.asarray(values if cols is None else values[cols])
    mb = np.asarray(mask if cols is None else mask[cols])
    dot = xa @ xb.T  # missing values are 0, so this sums over the shared features only
    na2 = (xa * xa) @ mb.T
    nb2 = ma @ (xb * xb).T
    shared = ma @ mb.T
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = 1.0 - dot / np.sqrt(na2 * nb2)
    dist[(shared == 0) | (na2 == 0) | (nb2 == 0)] = np.nan
    np.clip(dist, 0.0, 2.0, out=dist)
    return dist, shared / np.float32(values.shape[1])


@lru_cache(maxsize=None)
def _has_observations(column: str) -> np.ndarray:
    return np.asarray(observed_values(column)[1]).any(axis=1)


def observed_distance_block(column: str, rows, cols=None):
    """(distance, coverage) float32 blocks for a WALS/PHOIBLE observed-feature column.

    Only languages with at least one observed feature enter the matrix products (about a quarter
    of URIEL for WALS syntax); the others get NaN distance and 0 coverage.
    """
    values, mask = observed_values(column)
    n = values.shape[0]
    has = _has_observations(column)
    row_idx = np.arange(n)[rows]
    col_idx = np.arange(n) if cols is None else np.arange(n)[cols]
    row_has, col_has = has[row_idx], has[col_idx]
    dist = np.full((row_idx.size, col_idx.size), np.nan, dtype=np.float32)
    coverage = np.zeros((row_idx.size, col_idx.size), dtype=np.float32)
    if row_has.any() and col_has.any():
        sub_d, sub_c = observed_block(values, mask, row_idx[row_has], col_idx[col_has])
        where = np.ix_(np.flatnonzero(row_has), np.flatnonzero(col_has))
        dist[where] = sub_d
        coverage[where] = sub_c
    return dist, coverage


# --- genealogy ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lineage:
    family: np.ndarray  # clade id per language, -1 if none
    genus: np.ndarray  # first-level subgroup id, -1 if none
    family_names: tuple[str, ...]


@lru_cache(maxsize=1)
def lineages() -> Lineage:
    z = _npz("family_features.npz")
    member = z["data"][:, :, 0] > 0
    size = member.sum(axis=0)
    names = tuple(str(f)[2:] for f in z["feats"])
    family = np.full(member.shape[0], -1, dtype=np.int64)
    genus = np.full(member.shape[0], -1, dtype=np.int64)
    for i in range(member.shape[0]):
        clades = np.flatnonzero(member[i])
        if clades.size == 0:
            continue
        # root first: most members; ties (unary chains) broken by position, which lang2vec
        # writes root-first
        order = clades[np.lexsort((clades, -size[clades]))]
        family[i] = order[0]
        if order.size > 1:
            genus[i] = order[1]
    return Lineage(family, genus, names)


def same_group_pairs(kind: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """1.0 / 0.0 whether both languages share the family (or genus), NaN when unknown."""
    groups = getattr(lineages(), kind)
    a, b = groups[left], groups[right]
    out = (a == b).astype(np.float64)
    out[(a < 0) | (b < 0)] = np.nan
    return out


def language_family(code: str) -> str | None:
    """The top-level Glottolog family URIEL gives a language (None for isolates/unclassified)."""
    lin = lineages()
    f = lin.family[indices([code])[0]]
    return None if f < 0 else lin.family_names[f]


def uriel_pair_features(left_codes, right_codes, columns=URIEL_COLUMNS) -> dict[str, np.ndarray]:
    """Selected URIEL columns for aligned lists of ISO 639-3 codes."""
    left, right = indices(list(left_codes)), indices(list(right_codes))
    # Many pairs over few languages (a results table, all pairs of a language list): compute the
    # block over the distinct languages once and gather, instead of gathering vectors per pair.
    distinct, position = np.unique(np.concatenate([left, right]), return_inverse=True)
    use_block = distinct.size ** 2 <= MAX_BLOCK_ENTRIES and distinct.size ** 2 < 4 * left.size
    li, ri = position[:left.size], position[left.size:]
    out: dict[str, np.ndarray] = {}
    for col in columns:
        if col in KNN_DISTANCES:
            if use_block:
                out[col] = distance_block(col, distinct, distinct)[li, ri].astype(np.float64)
            else:
                out[col] = cosine_distance_pairs(col, left, right)
        elif col in OBSERVED_DISTANCES or col.removesuffix("_coverage") in OBSERVED_DISTANCES:
            base = col.removesuffix("_coverage")
            if base in out:
                continue
            if use_block:
                d, c = observed_distance_block(base, distinct, distinct)
                out[base], out[f"{base}_coverage"] = (d[li, ri].astype(np.float64),
                                                      c[li, ri].astype(np.float64))
            else:
                out[base], out[f"{base}_coverage"] = observed_distance_pairs(base, left, right)
        elif col == "same_family":
            out[col] = same_group_pairs("family", left, right)
        elif col == "same_genus":
            out[col] = same_group_pairs("genus", left, right)
        else:
            raise KeyError(col)
    # The vectors are float32 (~7 significant digits): a language against itself, or two languages
    # with identical vectors, comes out as ~1e-7 rather than 0. Distances are rounded to 6 decimals
    # (also keeping tables identical across BLAS builds) and a language's distance to itself is 0.
    same = left == right
    for col, values in out.items():
        if col in KNN_DISTANCES or col in OBSERVED_DISTANCES:
            values = np.round(values, 6)
            values[same & np.isfinite(values)] = 0.0
            out[col] = values
    return {c: out[c] for c in columns}
