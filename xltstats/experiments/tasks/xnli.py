"""XNLI: natural language inference in 15 languages (Conneau et al., 2018)."""
from . import Task, register

register(Task(
    name="xnli",
    kind="classification",
    labels=("entailment", "neutral", "contradiction"),
    metric="accuracy",
    description="Cross-lingual natural language inference (premise, hypothesis -> 3 labels)",
    hub_id="facebook/xnli",
    hub_configs={
        "ara": "ar", "bul": "bg", "deu": "de", "ell": "el", "eng": "en", "spa": "es", "fra": "fr",
        "hin": "hi", "rus": "ru", "swa": "sw", "tha": "th", "tur": "tr", "urd": "ur", "vie": "vi",
        "zho": "zh",
    },
    text_fields=("premise", "hypothesis"),
    label_field="label",
    prompt="xnli premise: {premise} hypothesis: {hypothesis}",
    verbalizer={"entailment": "yes", "neutral": "maybe", "contradiction": "no"},
))
