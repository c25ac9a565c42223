"""WikiANN named-entity recognition (Pan et al., 2017; splits of Rahimi et al., 2019)."""
from . import Task, register

# ISO 639-3 -> WikiANN config (ISO 639-1 where one exists); extend as needed.
_CONFIGS = {
    "afr": "af", "ara": "ar", "bul": "bg", "ben": "bn", "cat": "ca", "ces": "cs", "dan": "da",
    "deu": "de", "ell": "el", "eng": "en", "spa": "es", "est": "et", "eus": "eu", "fas": "fa",
    "fin": "fi", "fra": "fr", "glg": "gl", "heb": "he", "hin": "hi", "hun": "hu", "ind": "id",
    "isl": "is", "ita": "it", "jpn": "ja", "jav": "jv", "kat": "ka", "kaz": "kk", "kor": "ko",
    "lit": "lt", "lav": "lv", "mal": "ml", "mar": "mr", "msa": "ms", "mya": "my", "nld": "nl",
    "nor": "no", "pol": "pl", "por": "pt", "ron": "ro", "rus": "ru", "swe": "sv", "swa": "sw",
    "tam": "ta", "tel": "te", "tha": "th", "tgl": "tl", "tur": "tr", "ukr": "uk", "urd": "ur",
    "vie": "vi", "yor": "yo", "zho": "zh",
}

register(Task(
    name="wikiann",
    kind="tagging",
    labels=("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"),
    metric="f1",
    description="Named-entity recognition, entity-level F1 over IOB2 spans",
    hub_id="unimelb-nlp/wikiann",
    hub_configs=_CONFIGS,
    hub_splits={"train": "train", "test": "test"},
    tokens_field="tokens",
    tags_field="ner_tags",
    prompt="ner:",
))
