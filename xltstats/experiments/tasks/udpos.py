"""Universal Dependencies part-of-speech tagging (UPOS, 17 tags).

Data sources:

* ``ud`` (default, works offline with a mirror): the Parallel Universal Dependencies (PUD)
  treebanks, CoNLL-U files pinned to a commit of their GitHub repository (the project's corpus
  registry, ``xltstats/data/corpora.yaml``, section ``pud``) and fetched through
  :func:`xltstats.datasets.fetch.fetch` (collection ``ud``; ``$XLTSTATS_MIRROR`` pointing at
  ``shared/data/published`` finds ``shared/data/ud``).  PUD has one 1000-sentence test file per
  language, the same sentences translated; sentence ``i`` (0-based, file order) goes to the
  test split when ``i % 5 == 4`` and to the train split otherwise (800 train / 200 test).
  Because the split is by sentence position and PUD is parallel, no translation of a test
  sentence is ever seen in training in any language.
* ``hub``: ``universal_dependencies`` on the Hugging Face hub (one treebank per language below).
* a directory of ``<iso639-3>/<split>.jsonl`` files with ``tokens`` and ``upos`` fields.
"""
from __future__ import annotations

from functools import lru_cache

from . import Task, register

UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
        "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")

# Hub treebanks with a train split, for users loading from the hub.
HUB_TREEBANKS = {
    "ara": "ar_padt", "ces": "cs_pdt", "deu": "de_gsd", "eng": "en_ewt", "spa": "es_gsd",
    "fin": "fi_tdt", "fra": "fr_gsd", "hin": "hi_hdtb", "ind": "id_gsd", "ita": "it_isdt",
    "jpn": "ja_gsd", "kor": "ko_kaist", "pol": "pl_pdb", "por": "pt_bosque", "rus": "ru_syntagrus",
    "swe": "sv_talbanken", "tur": "tr_imst", "zho": "zh_gsd",
}


@lru_cache(maxsize=1)
def pud_treebanks() -> dict:
    """ISO 639-3 -> {repo, commit, file, sha256}: the project's corpus registry (corpora.yaml)."""
    import yaml

    from ...paths import package_data

    with open(package_data("corpora.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)["pud"]


def pud_remote(lang: str):
    from ...datasets.fetch import RemoteFile

    cfg = pud_treebanks()
    tb = cfg["treebanks"][lang]
    url = cfg["url_template"].format(repo=tb["repo"], commit=tb["commit"], file=tb["file"])
    return RemoteFile(cfg["collection"], f"{tb['repo']}/{tb['file']}", url, tb["sha256"])


@lru_cache(maxsize=None)
def _read_pud(lang: str) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    import conllu

    from ...datasets.fetch import fetch

    path = fetch(pud_remote(lang))
    sentences = []
    with open(path, encoding="utf-8") as fh:
        for sentence in conllu.parse_incr(fh):
            words = [t for t in sentence if isinstance(t["id"], int)]  # no ranges, no empty nodes
            sentences.append((tuple(t["form"] for t in words), tuple(t["upos"] for t in words)))
    return tuple(sentences)


def _load_pud(lang: str, split: str) -> list[dict]:
    sentences = _read_pud(lang)
    keep = (lambda i: i % 5 == 4) if split == "test" else (lambda i: i % 5 != 4)
    return [TASK.normalise({"tokens": list(tokens), "upos": list(tags)}, pud_remote(lang).path, i + 1)
            for i, (tokens, tags) in enumerate(sentences) if keep(i)]


TASK = register(Task(
    name="udpos",
    kind="tagging",
    labels=UPOS,
    metric="accuracy",
    description="Universal POS tagging, token accuracy",
    hub_id="universal_dependencies",
    hub_configs=HUB_TREEBANKS,
    tokens_field="tokens",
    tags_field="upos",
    drop_tags=("_",),
    prompt="pos:",
    default_data="ud",
    named_sources={"ud": (lambda: set(pud_treebanks()["treebanks"]), _load_pud)},
))
