"""Universal Dependencies part-of-speech tagging (UPOS, 17 tags).

Data sources:

* ``ud`` (default, works offline with a mirror): the Parallel Universal Dependencies (PUD)
  treebanks, CoNLL-U files pinned to a commit of their GitHub repository and fetched through
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

RAW_URL = "https://raw.githubusercontent.com/UniversalDependencies/{repo}/{commit}/{file}"

# ISO 639-3 -> (repository, full commit, file, sha256 of the file)
PUD = {
    "ara": ("UD_Arabic-PUD", "be733f45d21f42d506c62930f806ed2182a5ee3d", "ar_pud-ud-test.conllu",
            "a6d574a46815f6d6e7fa2e92944a2bbde0acaad5013010d92a99f1ef711ce17b"),
    "zho": ("UD_Chinese-PUD", "2849afd946a8c01b3e9acdf3e7afa8670cf2777d", "zh_pud-ud-test.conllu",
            "e12582af2e2bbc2e27155ca7dc12b6fc4a037dbc716e1f805d67e34ffb2596b3"),
    "ces": ("UD_Czech-PUD", "f68c66ccd8ab08fa343783a806fed446b905c07e", "cs_pud-ud-test.conllu",
            "af365749e569cc9daeeebee916dd33161e5c23b278077553f6ffbf4f82c5b652"),
    "eng": ("UD_English-PUD", "f16eba4ae7f3d161870ed320676c5088b8fa476c", "en_pud-ud-test.conllu",
            "c80584f2bc2b31d5bada78a1136f9feec7ac49e5e18898db02dea434b5b8f0aa"),
    "fin": ("UD_Finnish-PUD", "fa2c5ad1df6b18333b29fe87d093051097f36365", "fi_pud-ud-test.conllu",
            "a33821b600b818be9d3b0620d33ca54057605ab68845cdee3d649220dbd62e6e"),
    "fra": ("UD_French-PUD", "c245786cfb3020d43bcfc96215ae531a1b07bcbc", "fr_pud-ud-test.conllu",
            "793540702db111d2bfe04f846edddb23e7a2a432294fe17cb612dd795fb0301f"),
    "glg": ("UD_Galician-PUD", "0e7f538ccc17aa6ed3b299dba0e3ddd1319d6d89", "gl_pud-ud-test.conllu",
            "4fc7406056b0445c2e0f368b0f9be507c3b096c85e2b5dfd108bb1e052bc7d41"),
    "deu": ("UD_German-PUD", "ff80846ae60a0a70fc4d6251ef73e6a483a620ee", "de_pud-ud-test.conllu",
            "a530bdb50349bbd7c13706b6a759a9d73e8f514fff41fbf27149e914b0c3e723"),
    "hin": ("UD_Hindi-PUD", "8bc630f73e0737ce5ed9eaa97abf11f172ecc9bd", "hi_pud-ud-test.conllu",
            "3562b7f49420912acad70a45a483f683dcb44624ea92f82e21b29f2ee41a9dff"),
    "isl": ("UD_Icelandic-PUD", "d72cbdfa9b8dbb55710a1482309e55ea4a6bcc9f", "is_pud-ud-test.conllu",
            "a024997a765ba1c5350f999a421b7faef43f7ebc0412b1378305ab7b91a8df52"),
    "ind": ("UD_Indonesian-PUD", "765fb3fe486201f094cb177aff5aa84bc6b06800", "id_pud-ud-test.conllu",
            "07efad4d64863ab442aef820afdb34c269f80366c6efb583225f943e5baf88b2"),
    "ita": ("UD_Italian-PUD", "71d932aa096368331ba2fd9bc906ec8dd853da8e", "it_pud-ud-test.conllu",
            "ad5d302bdfd05194155d9ad43dc54c3cb915076d66b3eb6ef33eca9a11f1372a"),
    "jpn": ("UD_Japanese-PUD", "b51e1c1a82a987b6fb1a8edc621b0b5573ad9a99", "ja_pud-ud-test.conllu",
            "33a41e4a3f58d07663e178dbe5ec156453da44f1b19aa2017ad0718c3b5f398a"),
    "kor": ("UD_Korean-PUD", "9bc99c21a00b88d44def216b64f898e4b6151d0d", "ko_pud-ud-test.conllu",
            "662fcdaf236a223699b410c812ca66e3e69c380c078ae552a88f207ba240981c"),
    "pol": ("UD_Polish-PUD", "a726e5866e7f134763d734e6d915b8faf10f552f", "pl_pud-ud-test.conllu",
            "6dccca751cf1b701196d238b8f2a259afbddc07f45322839feb4acd99b7e90fb"),
    "por": ("UD_Portuguese-PUD", "be08a756d76bd79bf5d4a492dfdc28b46b33e76e", "pt_pud-ud-test.conllu",
            "6fb673563b068c0693144aba16c9406f8672ef9d6a7703d8ccf71a44a07df937"),
    "rus": ("UD_Russian-PUD", "da5b3816eeaa24283c1d81a48bb1de4d062fc5d5", "ru_pud-ud-test.conllu",
            "a37e076d24f0c3cfd5d48a11bbfec36026da5dc46180b7a12dc991dc372de1ea"),
    "spa": ("UD_Spanish-PUD", "818a82b8628c9cbec78750c7e83ccba34b9ce22b", "es_pud-ud-test.conllu",
            "48a7b5c7f409100b24eba90c7397e01f6fecaaf3207315a9a1bda029f77e98d3"),
    "swe": ("UD_Swedish-PUD", "1290a67471931e543b4d2a734829f9177c604e94", "sv_pud-ud-test.conllu",
            "4f978396f363c85a9c7ece193327529e4cdbe9ce0f6ad807eb8846e865043fff"),
    "tha": ("UD_Thai-PUD", "516638d39adfbc03fa3e7f7b33ce59555055a2d9", "th_pud-ud-test.conllu",
            "0eeeaf5cf4352df2fe0b7f114e29d5ab5c1f54476faf64e99313de14d588a31b"),
    "tur": ("UD_Turkish-PUD", "63a134a087c8475ea832713b960baba8ff2f9401", "tr_pud-ud-test.conllu",
            "7c1b6fe01662a7617758fbecdda6af6fc3914ace46b1809d6514af0a1c1df88c"),
}

# Hub treebanks with a train split, for users loading from the hub.
HUB_TREEBANKS = {
    "ara": "ar_padt", "ces": "cs_pdt", "deu": "de_gsd", "eng": "en_ewt", "spa": "es_gsd",
    "fin": "fi_tdt", "fra": "fr_gsd", "hin": "hi_hdtb", "ind": "id_gsd", "ita": "it_isdt",
    "jpn": "ja_gsd", "kor": "ko_kaist", "pol": "pl_pdb", "por": "pt_bosque", "rus": "ru_syntagrus",
    "swe": "sv_talbanken", "tur": "tr_imst", "zho": "zh_gsd",
}


def pud_remote(lang: str):
    from ...datasets.fetch import RemoteFile

    repo, commit, file, sha = PUD[lang]
    return RemoteFile("ud", f"{repo}/{file}", RAW_URL.format(repo=repo, commit=commit, file=file), sha)


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
    named_sources={"ud": (lambda: set(PUD), _load_pud)},
))
