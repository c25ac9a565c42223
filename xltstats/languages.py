"""Language codes: normalise whatever a results table uses to ISO 639-3.

Accepted inputs: ISO 639-1 (``de``), ISO 639-2/T and /B (``deu``, ``ger``), ISO 639-3 (``pcm``),
BCP-47 tags and POSIX/FLORES locales (``de-DE``, ``zh-Hant``, ``pt_BR``, ``de_DE.UTF-8``,
``eng_Latn``) and the Universal Dependencies codes (``lzh``, ``hyw``, ``qhe``, ``qtd``, ...).
Region and script subtags are dropped: they do not change the language.

Every decision that is not the plain ISO mapping (macro-languages, individual languages folded
into their macro code, code-switching pseudo-codes, collective codes that are ambiguous, dataset
oddities) lives in one table shipped with the package, ``xltstats/data/language_overrides.csv``
with columns ``code, iso639_3, name, reason``.  ``iso639_3`` holding several codes separated by
``|`` marks an ambiguous code: it raises :class:`LanguageCodeError` listing the candidates.

The policy in that table: macro-languages stay as the macro code (``zho``, ``ara``, ``fas``,
``msa``, ``est``, ``lav``, ``swa``, ``nor``, ``hbs``) because URIEL/lang2vec has its richest
entries under those codes and most transfer datasets use them; the standard individual language
that FLORES-style codes name (``cmn``, ``arb``, ``pes``, ``zsm``, ``swh``, ...) is folded into the
macro code so that tables using either convention join; distinct languages inside a macro-language
(``yue``, ``lzh``, ``kmr``, ``nno``) stay separate.  Norwegian ``no``, ``nb`` and ``nob`` become
``nor``; Nynorsk stays ``nno``.

Keeping individual languages: ``to_iso639_3(code, individual=True)`` (or, for a whole run,
``with language_options(individual=True): ...``) keeps an individual language of a macrolanguage
as its own code instead of folding it (``pes``, ``cmn``, ``arb``, ``nob``/``nb`` stay distinct
from ``fas``, ``zho``, ``ara``, ``nor``); macro codes themselves (``fa``, ``zh``) are unchanged.
Membership is the ISO 639-3 macrolanguage table as CLDR (through ``langcodes``) ships it.

Retired codes: an ISO 639-3 code that SIL has retired and that ``langcodes`` no longer accepts is
looked up in the SIL retirement table shipped as ``xltstats/data/iso639_3_retirements.tsv``
(see ``iso639_3_retirements.md`` there for its origin).  Codes changed, merged or found to be
duplicates map to their replacement (``jai`` -> ``jac``); a code split into several languages is
ambiguous (the error lists them); a code retired as non-existent is an error giving SIL's remedy.
A retired code that ``langcodes`` still accepts and URIEL still uses (``ajp``, merged into
``apc`` in 2023; the UD treebank and URIEL use ``ajp``) is kept, so existing tables join as before;
:func:`retirement` tells what SIL says about it.

English names: a value that is no code is read as an English language name when ``langcodes``
finds exactly that name and no other language has it (``Bengali`` -> ``ben``, ``Farsi`` ->
``fas``); two- and three-letter values are always codes.  Every such resolution (and every
retired code mapped) is reported: :func:`collect_resolutions` gathers them as readable notes.
"""
from __future__ import annotations

import contextlib
import contextvars
import csv
import difflib
import functools
import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd

from xltstats.errors import InputError, XltstatsError
from xltstats.paths import package_data

__all__ = [
    "LanguageCodeError",
    "to_iso639_3",
    "language_name",
    "normalise_codes",
    "uriel_languages",
    "in_uriel",
    "language_overrides",
    "language_options",
    "collect_resolutions",
    "retirement",
    "retirement_table",
]

_OVERRIDES_FILE = "language_overrides.csv"
_RETIREMENTS_FILE = "iso639_3_retirements.tsv"
_RETIREMENT_REASONS = {"C": "changed", "D": "a duplicate", "M": "merged",
                       "N": "non-existent", "S": "split"}
_INDIVIDUAL = contextvars.ContextVar("xltstats_individual_languages", default=False)
_COLLECTOR: contextvars.ContextVar = contextvars.ContextVar("xltstats_code_notes", default=None)
# Codes that are well formed but name no language (undetermined, no linguistic content, ...).
_NOT_A_LANGUAGE = {"und", "zxx", "mis"}
_PRIVATE_USE = re.compile(r"^q[a-t][a-z]$")


class LanguageCodeError(XltstatsError, ValueError):
    """A language code that is unknown or ambiguous.

    ``candidates`` lists the codes an ambiguous code may stand for; ``suggestions`` lists known
    codes close to an unknown one.
    """

    def __init__(self, message: str, *, code=None, candidates=(), suggestions=()):
        self.code = code
        self.candidates = list(candidates)
        self.suggestions = list(suggestions)
        super().__init__(message)


@functools.lru_cache(maxsize=1)
def language_overrides() -> pd.DataFrame:
    """The shipped override table (columns code, iso639_3, name, reason), codes lower-cased."""
    with open(package_data(_OVERRIDES_FILE), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    table = pd.DataFrame(rows, columns=["code", "iso639_3", "name", "reason"]).fillna("")
    table["code"] = table["code"].str.strip().str.lower()
    if table["code"].duplicated().any():
        dups = sorted(table.loc[table["code"].duplicated(), "code"])
        raise RuntimeError(f"{_OVERRIDES_FILE} lists codes twice: {dups}")
    return table


@functools.lru_cache(maxsize=1)
def _override_map() -> dict[str, tuple[list[str], str]]:
    table = language_overrides()
    return {
        code: (target.split("|"), name)
        for code, target, name in zip(table["code"], table["iso639_3"], table["name"])
    }


def _lang2vec_data_dir() -> Path | None:
    # Located without importing lang2vec: its import pulls pkg_resources, missing on new setuptools.
    spec = importlib.util.find_spec("lang2vec")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    return folder if folder.is_dir() else None


@functools.lru_cache(maxsize=1)
def uriel_languages() -> frozenset[str]:
    """ISO 639-3 codes URIEL (as shipped with lang2vec) has an entry for; empty if not installed."""
    folder = _lang2vec_data_dir()
    if folder is None or not (folder / "features.npz").exists():
        return frozenset()
    with np.load(folder / "features.npz", allow_pickle=False) as archive:  # data only, never unpickled
        return frozenset(str(code) for code in archive["langs"])


def in_uriel(code: str) -> bool:
    """Whether URIEL has an entry for the language (after normalisation)."""
    return to_iso639_3(code) in uriel_languages()


def _clean(code: str) -> str:
    text = code.strip()
    # POSIX locales: de_DE.UTF-8, sr_RS@latin
    text = re.split(r"[.@]", text, maxsplit=1)[0]
    return text.replace("_", "-").lower()


class _Unresolved(Exception):
    """Internal: why a code could not be resolved (suggestions are added by the caller)."""

    def __init__(self, why: str, candidates=()):
        self.why = why
        self.candidates = list(candidates)
        super().__init__(why)


@contextlib.contextmanager
def language_options(*, individual: bool = False):
    """Within the block, :func:`to_iso639_3` keeps individual languages (``individual=True``)
    unless a call says otherwise."""
    token = _INDIVIDUAL.set(bool(individual))
    try:
        yield
    finally:
        _INDIVIDUAL.reset(token)


@contextlib.contextmanager
def collect_resolutions():
    """Collect the codes resolved other than by plain ISO lookup (English names, retired codes).

    Yields a dict ``{value as given: note}`` filled while the block runs; each distinct value
    once.
    """
    notes: dict[str, str] = {}
    token = _COLLECTOR.set(notes)
    try:
        yield notes
    finally:
        _COLLECTOR.reset(token)


@functools.lru_cache(maxsize=1)
def retirement_table() -> pd.DataFrame:
    """SIL's ISO 639-3 retirement table as shipped (columns Id, Ref_Name, Ret_Reason, Change_To,
    Ret_Remedy, Effective), all text."""
    with open(package_data(_RETIREMENTS_FILE), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    columns = ["Id", "Ref_Name", "Ret_Reason", "Change_To", "Ret_Remedy", "Effective"]
    table = pd.DataFrame(rows, columns=columns).fillna("")
    for column in columns:
        table[column] = table[column].astype(str).str.strip()
    if table["Id"].duplicated().any():
        raise RuntimeError(f"{_RETIREMENTS_FILE} lists codes twice: "
                           f"{sorted(table.loc[table['Id'].duplicated(), 'Id'])}")
    return table


@functools.lru_cache(maxsize=1)
def _retirements() -> dict[str, dict[str, str]]:
    return {row["Id"]: row for row in retirement_table().to_dict("records")}


def _split_codes(remedy: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r"\[([a-z]{3})\]", remedy)))


def retirement(code: str) -> dict | None:
    """What SIL's retirement table says about ``code`` (lower-cased 639-3), or None.

    Keys: ``code``, ``name``, ``reason`` (changed, a duplicate, merged, non-existent, split),
    ``replacement`` (a code, or empty), ``split_into`` (codes, for a split), ``remedy``,
    ``effective`` (date).
    """
    row = _retirements().get(str(code).strip().lower())
    if row is None:
        return None
    return {
        "code": row["Id"], "name": row["Ref_Name"],
        "reason": _RETIREMENT_REASONS.get(row["Ret_Reason"], row["Ret_Reason"]),
        "replacement": row["Change_To"], "split_into": _split_codes(row["Ret_Remedy"]),
        "remedy": row["Ret_Remedy"], "effective": row["Effective"],
    }


def _retired(code: str, individual: bool, depth: int) -> tuple[str, str]:
    """Resolve a retired code through the SIL table: (iso, note), or raise _Unresolved."""
    info = retirement(code)
    if info is None:
        raise _Unresolved("not in ISO 639")
    when = f"retired from ISO 639-3 on {info['effective']}" if info["effective"] \
        else "retired from ISO 639-3"
    what = f"{code!r} ({info['name']}) was {when}"
    if info["replacement"] and depth < 5:
        try:
            target, _ = _resolve(info["replacement"], individual, depth + 1)
        except _Unresolved:
            raise _Unresolved(f"{what} ({info['reason']}) in favour of "
                              f"{info['replacement']!r}, which cannot be resolved") from None
        return target, (f"{what} ({info['reason']} into {info['replacement']}); "
                        f"read as {target} ({_name_of(target)})")
    if info["reason"] == "split":
        parts = info["split_into"]
        if len(parts) > 1:
            raise _Unresolved(f"{what}: split", parts)
    remedy = f": {info['remedy']}" if info["remedy"] else ""
    raise _Unresolved(f"{what} as {info['reason']}{remedy}")


def _individual_member(subtag: str) -> str | None:
    """The ISO 639-3 code of ``subtag`` when it is an individual language of a macrolanguage."""
    import langcodes.data_dicts as tables
    from langcodes import Language
    from langcodes.tag_parser import LanguageTagError

    try:
        forms = [Language.get(subtag, normalize=False), Language.get(subtag)]
    except (LanguageTagError, ValueError):
        return None
    for form in forms:  # nb is listed as a member, nob only through its 639-1 form
        if form.language and form.language in tables.MACROLANGUAGES and form.is_valid():
            try:
                return Language.get(subtag, normalize=False).to_alpha3()
            except LookupError:
                return None
    return None


def _resolve(cleaned: str, individual: bool = False, depth: int = 0) -> tuple[str, str | None]:
    """(ISO 639-3 code, note or None) of a cleaned code; raises _Unresolved."""
    overrides = _override_map()
    primary = cleaned.split("-")[0]
    if individual:
        member = _individual_member(primary)
        if member is not None:
            return member, None
    for key in (cleaned, primary):
        if key in overrides:
            targets, _ = overrides[key]
            if len(targets) > 1:
                raise _Unresolved("ambiguous", targets)
            return targets[0], None
    from langcodes import Language
    from langcodes.tag_parser import LanguageTagError

    try:
        language = Language.get(cleaned)
    except (LanguageTagError, ValueError):
        raise _Unresolved("not a well-formed language tag") from None
    subtag = language.language
    if not subtag or subtag in _NOT_A_LANGUAGE:
        raise _Unresolved("it names no particular language")
    if _PRIVATE_USE.match(subtag):
        raise _Unresolved("private-use code with no agreed meaning")
    if not Language.get(subtag).is_valid():
        return _retired(subtag, individual, depth)
    try:
        alpha3 = Language.get(subtag).to_alpha3()
    except LookupError:
        if retirement(subtag) is not None:
            return _retired(subtag, individual, depth)
        raise _Unresolved("no ISO 639-3 equivalent") from None
    # The normalised subtag (e.g. a retired code's replacement) may itself be overridden.
    if alpha3 in overrides and len(overrides[alpha3][0]) == 1:
        return overrides[alpha3][0][0], None
    return alpha3, None


@functools.lru_cache(maxsize=1)
def _known_codes() -> tuple[list[str], dict[str, str]]:
    """Codes offered as suggestions, and lower-cased English names -> ISO 639-3 code."""
    import langcodes.data_dicts as tables

    codes = set(tables.LANGUAGE_ALPHA3) | set(tables.LANGUAGE_ALPHA3.values())
    codes |= set(uriel_languages())
    codes |= set(_override_map())
    codes = sorted(code for code in codes if code.isalpha())
    names: dict[str, str] = {}
    for code in codes:
        try:
            target, _ = _resolve(code)
        except _Unresolved:
            continue
        name = _name_of(target).lower()
        if not name.startswith("unknown language"):
            names.setdefault(name, target)
    return codes, names


def _suggestions(cleaned: str) -> list[str]:
    """Known codes near ``cleaned``: widely used languages (with a 639-1 code) first."""
    import langcodes.data_dicts as tables

    major = set(tables.LANGUAGE_ALPHA3) | set(tables.LANGUAGE_ALPHA3.values())
    codes, names = _known_codes()
    key = cleaned.split("-")[0]
    close_codes = difflib.get_close_matches(key, codes, n=30, cutoff=0.6)
    close_codes.sort(key=lambda code: (code not in major,
                                       -difflib.SequenceMatcher(None, key, code).ratio()))
    from_codes = []
    for close in close_codes[:4]:
        try:
            from_codes.append(_resolve(close)[0])
        except _Unresolved:
            continue
    from_names = [names[name] for name in
                  difflib.get_close_matches(cleaned, list(names), n=3, cutoff=0.75)]
    if len(key) > 3:
        from language_data.names import normalize_name

        trie = _english_name_trie()
        for name in difflib.get_close_matches(normalize_name(cleaned.replace("-", " ")),
                                              trie.keys(), n=3, cutoff=0.8):
            try:
                from_names.append(_resolve(_clean(trie[name][0].decode("utf-8")))[0])
            except _Unresolved:
                continue
    # A long input is more likely a misspelt name than a misspelt code.
    found = from_names + from_codes if len(key) > 3 else from_codes + from_names
    unique = list(dict.fromkeys(found))[:5]
    return [f"{code} ({_name_of(code)})" for code in unique]


@functools.lru_cache(maxsize=1)
def _english_name_trie():
    """language_data's English name -> language trie: the names it resolves unambiguously."""
    from language_data.names import load_trie
    from language_data.util import data_filename

    return load_trie(data_filename("trie/en/name_to_language.marisa"))


@functools.lru_cache(maxsize=1)
def _english_names() -> dict[str, frozenset[str]]:
    """Normalised English names (CLDR and the IANA registry, through language_data) -> the
    language tags bearing each; used to list the candidates of an ambiguous name."""
    from language_data.name_data import CODE_TO_NAMES
    from language_data.names import normalize_name

    index: dict[str, set[str]] = {}
    for tag, names in CODE_TO_NAMES.items():
        english = names.get("en")
        if english is None or not re.fullmatch(r"[a-z]{2,3}", tag):
            continue
        for name in english if isinstance(english, list) else [english]:
            index.setdefault(normalize_name(name), set()).add(tag)
    return {name: frozenset(tags) for name, tags in index.items()}


def _from_english_name(text: str, individual: bool) -> tuple[str, str] | None:
    """(iso, note) when ``text`` is exactly an English language name that language_data
    resolves to one language; raises _Unresolved (with the candidates) when several languages
    bear it; None when it is no English language name."""
    if len(text) <= 3 or not re.search(r"[^\W\d_]", text):
        return None
    from language_data.names import normalize_name

    key = normalize_name(text)
    trie = _english_name_trie()
    tags = sorted({value.decode("utf-8") for value in trie[key]}) if key in trie else []
    if not tags:
        candidates = set()
        for tag in _english_names().get(key, ()):
            try:
                candidates.add(_resolve(tag, individual)[0])
            except _Unresolved:
                continue
        if len(candidates) > 1:
            raise _Unresolved("an English name several languages bear", sorted(candidates))
        tags = sorted(_english_names().get(key, ()))
    if len(tags) != 1:
        return None
    try:
        iso, _ = _resolve(_clean(tags[0]), individual)
    except _Unresolved:
        return None
    return iso, f"{text!r} read as the English name of {iso} ({_name_of(iso)})"


@functools.lru_cache(maxsize=65536)
def _convert(code: str, individual: bool) -> tuple[str, str | None]:
    cleaned = _clean(code)
    if not cleaned:
        raise LanguageCodeError("empty language code", code=code)
    try:
        return _resolve(cleaned, individual)
    except _Unresolved as problem:
        failure = problem
    if not failure.candidates:
        try:
            named = _from_english_name(code.strip(), individual)
        except _Unresolved as problem:
            failure = problem
        else:
            if named is not None:
                return named
    if failure.candidates:
        names = ", ".join(_name_of(c) for c in failure.candidates)
        why = "" if failure.why == "ambiguous" else f" ({failure.why})"
        raise LanguageCodeError(
            f"ambiguous language code {code!r}{why}: could be any of "
            f"{', '.join(failure.candidates)} ({names}); use one of these codes",
            code=code, candidates=failure.candidates) from None
    suggestions = _suggestions(cleaned)
    hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
    why = failure.why
    if len(cleaned.split("-")[0]) > 3 and why in ("not a well-formed language tag",
                                                  "not in ISO 639"):
        why = "neither a language code nor an English language name"
    raise LanguageCodeError(f"unknown language code {code!r}: {why}{hint}",
                            code=code, suggestions=suggestions) from None


def to_iso639_3(code: str, *, individual: bool | None = None) -> str:
    """The ISO 639-3 code of ``code`` (see the module docstring for what is accepted).

    ``individual``: keep an individual language of a macrolanguage as its own code (None: the
    :func:`language_options` in force, by default False).  Raises :class:`LanguageCodeError`
    for unknown codes (with close suggestions) and for ambiguous ones (with the candidates).
    """
    if not isinstance(code, str):
        raise LanguageCodeError(f"language code must be a string, got {code!r}", code=code)
    if individual is None:
        individual = _INDIVIDUAL.get()
    iso, note = _convert(code, bool(individual))
    if note is not None:
        notes = _COLLECTOR.get()
        if notes is not None:
            notes.setdefault(code, note)
    return iso


to_iso639_3.cache_clear = _convert.cache_clear  # type: ignore[attr-defined]
to_iso639_3.cache_info = _convert.cache_info  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=16384)
def _name_of(iso: str) -> str:
    overrides = _override_map()
    if iso in overrides and overrides[iso][1]:
        return overrides[iso][1]
    from langcodes import Language

    exact = Language.get(iso, normalize=False).language_name("en")
    if not exact.startswith("Unknown language"):
        return exact
    return Language.get(iso).language_name("en")


def language_name(code: str) -> str:
    """English name of the language ``code`` stands for (after normalisation)."""
    return _name_of(to_iso639_3(code))


def normalise_codes(values, *, file=None, column=None, rows=None,
                    individual: bool | None = None) -> list[str]:
    """Normalise a sequence of codes to ISO 639-3, converting each distinct value once.

    ``individual`` as for :func:`to_iso639_3`.

    On the first bad value raises :class:`~xltstats.errors.InputError` naming ``file``,
    ``column`` and the row: ``rows[i]`` when ``rows`` is given (the file's data-row numbers),
    else ``i + 1``.
    """
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped: list[str] = []
    for position, value in enumerate(uniques):
        try:
            mapped.append(to_iso639_3(value if isinstance(value, str) else str(value),
                                      individual=individual))
        except LanguageCodeError as error:
            first = int(np.flatnonzero(codes == position)[0])
            raise InputError(str(error), file=file, row=_row(rows, first), column=column) from None
    missing = np.flatnonzero(codes < 0)
    if missing.size:
        raise InputError("missing language code", file=file, row=_row(rows, int(missing[0])),
                         column=column)
    lookup = np.asarray(mapped, dtype=object)
    return lookup[codes].tolist() if len(codes) else []


def _row(rows, position: int) -> int:
    return int(rows[position]) if rows is not None else position + 1
