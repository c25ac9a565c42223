"""Lexical similarity of language pairs, measured on parallel text (UDHR or PUD).

Every measure compares the two languages on the *aligned units both have* (UDHR articles and
preamble, PUD sentences; see :mod:`xltstats.features.corpora`).  A pair with no shared non-empty
unit, or with a language the corpus lacks, gets NaN (never 0), and ``<measure>_units`` = 0.

Text processing
    Texts are Unicode NFKC-normalised and case-folded.  Characters of the Unicode categories
    punctuation (P*), symbols (S*), separators (Z*) and others/controls (C*) become spaces; words
    are the remaining whitespace-separated strings (letters, combining marks, digits stay, so
    Devanagari or Arabic words are not split at vowel signs).  Scripts written without spaces
    between words (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar, Tibetan) have no word
    boundaries to use, so every character of those scripts is a word of its own ("character-level
    words"); runs of other characters inside such a string stay one word.

Measures (all symmetric in source and target)
    ``word_overlap``
        Jaccard index of the two sets of word types, each set pooled over the shared units:
        ``|W_s & W_t| / |W_s | W_t|``.
    ``subword_overlap``
        The same Jaccard index over the token ids a subword tokenizer produces (``tokenizer=``: a
        Hugging Face hub id or a local directory, loaded with ``transformers.AutoTokenizer``, or a
        tokenizer object).  Texts are only NFC-normalised: the tokenizer does its own
        normalisation.  No special tokens.
    ``char_ngram_similarity``
        Cosine similarity of character n-gram frequency vectors (``ngram_range=(1, 3)`` by default)
        pooled over the shared units.  The n-grams are taken from the normalised text with
        punctuation/symbols replaced by spaces, whitespace collapsed and one space added at each
        end of a unit, so they include word boundaries; n-grams made only of spaces are dropped.
    ``normalised_edit_distance``
        Mean normalised Levenshtein distance of aligned words.  Alignment: within each shared unit
        with words on both sides, the unit with more words is the "from" side (equal counts: the
        language whose ISO code sorts first); its word ``i`` of ``n`` is aligned with word
        ``j = round(i * (m - 1) / (n - 1))`` of the ``m`` words on the other side (relative
        position; ``j = 0`` when ``n = 1``), so every word of the longer unit is aligned exactly
        once and the measure is symmetric.  Distance of a word pair =
        ``levenshtein(a, b) / max(len(a), len(b))`` (in code points).  The pair value is the mean
        over all aligned word pairs of all shared units (longer units weigh more).  Relative-position
        alignment is crude for languages with different word order; it is a cheap, reproducible
        proxy for shared vocabulary in corresponding positions, not a cognate detector.
        Levenshtein distances come from ``rapidfuzz`` when installed (a pure-Python fallback is used
        otherwise, slow on large inputs).

Vectorisation
    Per (language, unit) the words, n-grams and token ids are counted once into a sparse matrix.
    Pairs are grouped by the set of units they share; per group, languages' rows are summed over
    those units with one sparse product, and Jaccard intersections (binary Gram matrix) and cosine
    similarities (normalised Gram matrix) of all pairs in the group come from one more sparse
    product.  Edit distances are computed in batches of pairs with numpy index arithmetic and
    ``rapidfuzz.process.cpdist``; each unordered pair is computed once.

    Measured (2-core shared machine, load average about 4, one process, rapidfuzz 3.14): all 444
    UDHR languages, 196,692 ordered pairs: loading and parsing the texts 3.6 s, ``word_overlap``
    6.0 s, ``char_ngram_similarity`` (1-3 grams) 14.6 s, ``normalised_edit_distance`` 137 s
    (about 1.8e8 aligned word pairs), peak memory 0.7 GiB.
"""
from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import ConfigError, InputError

MEASURES = ("word_overlap", "subword_overlap", "char_ngram_similarity", "normalised_edit_distance")
DEFAULT_MEASURES = ("word_overlap", "char_ngram_similarity", "normalised_edit_distance")

# Scripts written without spaces between words: each character is a word.
_NO_SPACE_RANGES = (
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u0f00-\u0fff"  # Tibetan
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff\u19e0-\u19ff"  # Khmer
    "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\U00020000-\U0002ebef\U00030000-\U0003134f"  # Han extensions
)
_NO_SPACE_CHAR = re.compile(f"[{_NO_SPACE_RANGES}]")
_SPLIT_NO_SPACE = re.compile(f"[{_NO_SPACE_RANGES}]|[^{_NO_SPACE_RANGES}]+")


class _SeparatorTable(dict):
    """``str.translate`` table: punctuation, symbols, separators and controls -> space.

    Filled lazily, one entry per code point seen: characters that stay map to themselves.
    """

    def __missing__(self, codepoint):
        value = 0x20 if unicodedata.category(chr(codepoint))[0] in "PSZC" else codepoint
        self[codepoint] = value
        return value


_SEPARATORS = _SeparatorTable()


def clean_text(text: str) -> str:
    """NFKC + casefold, punctuation/symbols/separators to single spaces, stripped."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.translate(_SEPARATORS).split())


def tokenize_words(text: str) -> list[str]:
    """Words of ``text`` in order (see the module docstring for the rules)."""
    words: list[str] = []
    for token in clean_text(text).split():
        if _NO_SPACE_CHAR.search(token):
            words.extend(_SPLIT_NO_SPACE.findall(token))
        else:
            words.append(token)
    return words


def char_ngrams(text: str, ngram_range: tuple[int, int] = (1, 3)) -> list[str]:
    """Character n-grams of the cleaned ``text`` padded with one space at each end."""
    low, high = ngram_range
    cleaned = clean_text(text)
    if not cleaned:
        return []
    padded = f" {cleaned} "
    grams = []
    for n in range(low, high + 1):
        for i in range(len(padded) - n + 1):
            gram = padded[i : i + n]
            if not gram.isspace():
                grams.append(gram)
    return grams


# --------------------------------------------------------------------------- input handling
def _pairs_frame(pairs, normalise: bool = True) -> pd.DataFrame:
    """``source``/``target`` table of ``pairs``; codes normalised to ISO 639-3 unless told not to."""
    if isinstance(pairs, pd.DataFrame):
        missing = [c for c in ("source", "target") if c not in pairs.columns]
        if missing:
            raise InputError(f"pairs table has no column {missing[0]!r}", column=missing[0])
        frame = pairs[["source", "target"]].copy()
    else:
        rows = []
        for k, pair in enumerate(pairs, start=1):
            try:
                source, target = pair
            except (TypeError, ValueError) as exc:
                raise InputError(f"pair {pair!r} is not a (source, target) pair", row=k) from exc
            rows.append((source, target))
        frame = pd.DataFrame(rows, columns=["source", "target"], dtype=object)
    if not normalise:
        for column in ("source", "target"):
            frame[column] = pd.array([str(c) for c in frame[column]], dtype=object)
        return frame.reset_index(drop=True)
    from .corpora import normalise_language

    cache: dict[str, str] = {}
    for column in ("source", "target"):
        values = []
        for k, code in enumerate(frame[column].tolist(), start=1):
            if code not in cache:
                try:
                    cache[code] = normalise_language(code)
                except (ValueError, LookupError) as exc:
                    raise InputError(str(exc), row=k, column=column) from exc
            values.append(cache[code])
        frame[column] = pd.array(values, dtype=object)
    return frame.reset_index(drop=True)


class _UnitTable:
    """Languages x units, with per-(language, unit) token lists in a fixed row order."""

    def __init__(self, texts: dict[str, dict[str, str]]):
        self.languages = sorted(texts)
        self.units = sorted({u for by_unit in texts.values() for u, t in by_unit.items() if t.strip()})
        self.lang_index = {lang: i for i, lang in enumerate(self.languages)}
        unit_index = {u: j for j, u in enumerate(self.units)}
        self.row_lang: list[int] = []
        self.row_unit: list[int] = []
        self.row_text: list[str] = []
        for lang in self.languages:
            for unit, text in sorted(texts[lang].items()):
                if text.strip():
                    self.row_lang.append(self.lang_index[lang])
                    self.row_unit.append(unit_index[unit])
                    self.row_text.append(text)
        self.row_lang_arr = np.asarray(self.row_lang, dtype=np.int64)
        self.row_unit_arr = np.asarray(self.row_unit, dtype=np.int64)
        self.cover = np.zeros((len(self.languages), len(self.units)), dtype=bool)
        self.cover[self.row_lang_arr, self.row_unit_arr] = True

    def count_matrix(self, token_lists: Iterable[Iterable]) -> sparse.csr_matrix:
        """Sparse (rows x vocabulary) counts of the given per-row token lists."""
        vocabulary: dict = {}
        indptr = [0]
        indices: list[int] = []
        for tokens in token_lists:
            for tok in tokens:
                indices.append(vocabulary.setdefault(tok, len(vocabulary)))
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.float64)
        m = sparse.csr_matrix(
            (data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
            shape=(len(indptr) - 1, max(len(vocabulary), 1)),
        )
        m.sum_duplicates()
        return m


def _pair_groups(table: _UnitTable, frame: pd.DataFrame):
    """Yield (row positions, language ids a, language ids b, shared unit mask) per shared-unit set."""
    a = np.array([table.lang_index.get(s, -1) for s in frame["source"]], dtype=np.int64)
    b = np.array([table.lang_index.get(t, -1) for t in frame["target"]], dtype=np.int64)
    known = (a >= 0) & (b >= 0)
    groups: dict[bytes, list[int]] = {}
    for pos in np.flatnonzero(known):
        shared = table.cover[a[pos]] & table.cover[b[pos]]
        if shared.any():
            groups.setdefault(np.packbits(shared).tobytes(), []).append(pos)
    for positions in groups.values():
        positions = np.asarray(positions, dtype=np.int64)
        shared = table.cover[a[positions[0]]] & table.cover[b[positions[0]]]
        yield positions, a[positions], b[positions], shared


def _pooled(table: _UnitTable, counts: sparse.csr_matrix, languages: np.ndarray, shared: np.ndarray):
    """(len(languages) x vocab) counts summed over the shared units; row k = languages[k]."""
    local = {lang: k for k, lang in enumerate(languages)}
    keep = shared[table.row_unit_arr] & np.isin(table.row_lang_arr, languages)
    rows = np.flatnonzero(keep)
    agg = sparse.csr_matrix(
        (np.ones(len(rows)), ([local[x] for x in table.row_lang_arr[rows]], rows)),
        shape=(len(languages), counts.shape[0]),
    )
    return agg @ counts


def _set_and_cosine(table, counts, frame, kind: str):
    """Jaccard of type sets (``kind='jaccard'``) or cosine of counts (``'cosine'``) per pair."""
    values = np.full(len(frame), np.nan)
    units = np.zeros(len(frame), dtype=np.int64)
    for positions, a, b, shared in _pair_groups(table, frame):
        languages = np.unique(np.concatenate([a, b]))
        pooled = _pooled(table, counts, languages, shared)
        ia = np.searchsorted(languages, a)
        ib = np.searchsorted(languages, b)
        if kind == "jaccard":
            present = (pooled > 0).astype(np.float64)
            gram = (present @ present.T).toarray()
            size = np.asarray(present.sum(axis=1)).ravel()
            inter = gram[ia, ib]
            union = size[ia] + size[ib] - inter
            with np.errstate(invalid="ignore", divide="ignore"):
                values[positions] = np.where(union > 0, inter / union, np.nan)
        else:
            norms = np.sqrt(np.asarray(pooled.multiply(pooled).sum(axis=1)).ravel())
            gram = (pooled @ pooled.T).toarray()
            denom = norms[ia] * norms[ib]
            with np.errstate(invalid="ignore", divide="ignore"):
                values[positions] = np.where(denom > 0, gram[ia, ib] / denom, np.nan)
        units[positions] = int(shared.sum())
    return values, units


# --------------------------------------------------------------------------- edit distance
def levenshtein(a: str, b: str) -> int:
    """Plain Levenshtein distance (insertions, deletions, substitutions cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _normalised_distances(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Elementwise ``levenshtein / max(len)`` of two equally long object arrays of strings."""
    try:
        from rapidfuzz.distance import Levenshtein
        from rapidfuzz.process import cpdist
    except ImportError:
        out = np.empty(len(left))
        for k, (x, y) in enumerate(zip(left, right)):
            longest = max(len(x), len(y))
            out[k] = levenshtein(x, y) / longest if longest else 0.0
        return out
    return cpdist(left, right, scorer=Levenshtein.normalized_distance, dtype=np.float64, workers=1)


def _edit_distance(table: _UnitTable, word_lists: list[list[str]], frame, batch_words: int = 2_000_000):
    values = np.full(len(frame), np.nan)
    units = np.zeros(len(frame), dtype=np.int64)
    vocabulary: dict[str, int] = {}
    flat: list[int] = []
    lengths = np.zeros(len(word_lists), dtype=np.int64)
    for r, words in enumerate(word_lists):
        flat.extend(vocabulary.setdefault(w, len(vocabulary)) for w in words)
        lengths[r] = len(words)
    flat_ids = np.asarray(flat, dtype=np.int64)
    words_arr = np.empty(len(vocabulary), dtype=object)
    for w, k in vocabulary.items():
        words_arr[k] = w
    n_lang, n_unit = table.cover.shape
    offset = np.full((n_lang, n_unit), -1, dtype=np.int64)
    length = np.zeros((n_lang, n_unit), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    offset[table.row_lang_arr, table.row_unit_arr] = starts
    length[table.row_lang_arr, table.row_unit_arr] = lengths

    a = np.array([table.lang_index.get(s, -1) for s in frame["source"]], dtype=np.int64)
    b = np.array([table.lang_index.get(t, -1) for t in frame["target"]], dtype=np.int64)
    known = np.flatnonzero((a >= 0) & (b >= 0))
    # Canonical orientation so that (s, t) and (t, s) give identical alignments: first = lower
    # code; each unordered pair is computed once and copied to all rows that ask for it.
    keys = np.minimum(a[known], b[known]) * n_lang + np.maximum(a[known], b[known])
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    lo, hi = unique_keys // n_lang, unique_keys % n_lang
    pair_values = np.full(len(unique_keys), np.nan)
    both = (length[lo] > 0) & (length[hi] > 0)  # pairs x units
    units[known] = both.sum(axis=1)[inverse]
    aligned_per_pair = np.where(both, np.maximum(length[lo], length[hi]), 0).sum(axis=1)
    batch_ends = np.cumsum(aligned_per_pair) // max(int(batch_words), 1)

    start = 0
    while start < len(unique_keys):
        stop = int(np.searchsorted(batch_ends, batch_ends[start], side="right"))
        sel = np.arange(start, stop)
        p_idx, u_idx = np.nonzero(both[sel])
        la, lb = lo[sel][p_idx], hi[sel][p_idx]
        na, nb = length[la, u_idx], length[lb, u_idx]
        # "from" side = more words; ties -> lower language index (= code sorting first).
        a_is_from = na >= nb
        n_from = np.where(a_is_from, na, nb)
        n_to = np.where(a_is_from, nb, na)
        off_from = np.where(a_is_from, offset[la, u_idx], offset[lb, u_idx])
        off_to = np.where(a_is_from, offset[lb, u_idx], offset[la, u_idx])
        seg = np.repeat(np.arange(len(n_from)), n_from)
        i = np.arange(len(seg)) - np.repeat(np.cumsum(n_from) - n_from, n_from)
        nf, nt = n_from[seg], n_to[seg]
        with np.errstate(invalid="ignore", divide="ignore"):
            j = np.where(nf > 1, np.floor(i * (nt - 1) / np.maximum(nf - 1, 1) + 0.5), 0).astype(np.int64)
        left = words_arr[flat_ids[off_from[seg] + i]]
        right = words_arr[flat_ids[off_to[seg] + j]]
        dist = _normalised_distances(left, right)
        pair_of = p_idx[seg]
        sums = np.bincount(pair_of, weights=dist, minlength=len(sel))
        counts = np.bincount(pair_of, minlength=len(sel))
        with np.errstate(invalid="ignore", divide="ignore"):
            pair_values[sel] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        start = stop
    values[known] = pair_values[inverse]
    return values, units


# --------------------------------------------------------------------------- public API
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@contextlib.contextmanager
def _hub_offline():
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set for the block (restored afterwards)."""
    saved = {name: os.environ.get(name) for name in _OFFLINE_VARIABLES}
    os.environ.update({name: "1" for name in _OFFLINE_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _load_tokenizer(tokenizer, *, offline: bool = False):
    """A tokenizer object, or one loaded by ``transformers.AutoTokenizer`` from a local folder or a
    hub id.  ``offline`` (a data mirror is set): the hub is never contacted (HF_HUB_OFFLINE,
    TRANSFORMERS_OFFLINE and ``local_files_only``): a hub id must already be in the Hugging Face
    cache."""
    if not isinstance(tokenizer, (str, bytes)) and not hasattr(tokenizer, "__fspath__"):
        return tokenizer
    name = os.fsdecode(tokenizer) if not isinstance(tokenizer, str) else tokenizer
    local = Path(name).expanduser()
    from transformers import AutoTokenizer

    if local.is_dir():
        try:
            return AutoTokenizer.from_pretrained(str(local), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"could not load the tokenizer in folder {str(local)!r}: {exc}") from exc
    if offline:
        try:
            with _hub_offline():
                return AutoTokenizer.from_pretrained(name, local_files_only=True)
        except (OSError, ValueError):
            raise ConfigError(
                f"tokenizer {name!r} is not a local folder, and with a data mirror set xltstats "
                "does not use the network (HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1) and it is not "
                "in the Hugging Face cache: give a local tokenizer folder instead (--tokenizer "
                "/path/to/tokenizer, saved with AutoTokenizer.from_pretrained(NAME)"
                ".save_pretrained(PATH) on a machine with network), or unset XLTSTATS_MIRROR / "
                "--mirror to download it") from None
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"could not load tokenizer {name!r}: {exc}") from exc


def lexical_features_from_texts(
    texts: dict[str, dict[str, str]],
    pairs,
    measures=None,
    tokenizer=None,
    ngram_range: tuple[int, int] = (1, 3),
) -> pd.DataFrame:
    """Lexical measures of ``pairs`` on already-loaded aligned ``texts`` ({lang: {unit: text}}).

    Pair codes are looked up in ``texts`` verbatim (:func:`lexical_features` normalises them to
    ISO 639-3 first).  See the module docstring for the definitions.
    """
    if measures is None:
        measures = list(DEFAULT_MEASURES) + (["subword_overlap"] if tokenizer is not None else [])
    measures = [measures] if isinstance(measures, str) else list(measures)
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ConfigError(f"unknown lexical measure {unknown[0]!r}; choose from {', '.join(MEASURES)}")
    if "subword_overlap" in measures and tokenizer is None:
        raise ConfigError("subword_overlap needs a tokenizer (a Hugging Face id or a local path)")
    if not (1 <= ngram_range[0] <= ngram_range[1]):
        raise ConfigError(f"ngram_range must be (low, high) with 1 <= low <= high, got {ngram_range!r}")

    frame = _pairs_frame(pairs, normalise=False)
    table = _UnitTable(texts)
    word_lists = None
    if "word_overlap" in measures or "normalised_edit_distance" in measures:
        word_lists = [tokenize_words(t) for t in table.row_text]
    for measure in measures:
        if measure == "word_overlap":
            values, units = _set_and_cosine(table, table.count_matrix(word_lists), frame, "jaccard")
        elif measure == "subword_overlap":
            tok = _load_tokenizer(tokenizer)
            texts_nfc = [unicodedata.normalize("NFC", t) for t in table.row_text]
            ids = tok(texts_nfc, add_special_tokens=False)["input_ids"] if texts_nfc else []
            values, units = _set_and_cosine(table, table.count_matrix(ids), frame, "jaccard")
        elif measure == "char_ngram_similarity":
            grams = (char_ngrams(t, tuple(ngram_range)) for t in table.row_text)
            values, units = _set_and_cosine(table, table.count_matrix(grams), frame, "cosine")
        else:
            values, units = _edit_distance(table, word_lists, frame)
        frame[measure] = values
        frame[f"{measure}_units"] = units
    return frame


def lexical_features(
    pairs,
    measures=None,
    tokenizer=None,
    corpus: str = "udhr",
    mirror=None,
    ngram_range: tuple[int, int] = (1, 3),
) -> pd.DataFrame:
    """Lexical similarity of language pairs on a parallel corpus.

    Parameters
    ----------
    pairs
        (source, target) code pairs, or a DataFrame with ``source`` and ``target`` columns.
    measures
        Subset of :data:`MEASURES`; default: word overlap, character n-gram similarity and
        normalised edit distance, plus subword overlap when a ``tokenizer`` is given.
    tokenizer
        Hugging Face tokenizer id, local tokenizer directory, or tokenizer object (subword overlap).
    corpus
        ``"udhr"`` (about 450 languages, 31 units) or ``"pud"`` (21 languages, 1000 sentences).
    mirror
        Local data mirror (see :func:`xltstats.datasets.fetch.fetch`).

    Returns
    -------
    DataFrame with ``source``, ``target`` (ISO 639-3), one column per measure and
    ``<measure>_units`` (aligned units used), in the order of ``pairs``.
    """
    from ..datasets.fetch import mirror_dirs
    from .corpora import load_parallel

    if tokenizer is not None and mirror_dirs(mirror):
        # with a mirror nothing touches the network: load the tokenizer now, offline
        tokenizer = _load_tokenizer(tokenizer, offline=True)
    frame = _pairs_frame(pairs)
    languages = sorted(set(frame["source"]) | set(frame["target"]))
    texts = load_parallel(corpus, languages, mirror=mirror)
    return lexical_features_from_texts(texts, frame, measures, tokenizer, ngram_range)


__all__ = [
    "MEASURES",
    "DEFAULT_MEASURES",
    "lexical_features",
    "lexical_features_from_texts",
    "tokenize_words",
    "char_ngrams",
    "clean_text",
    "levenshtein",
]
