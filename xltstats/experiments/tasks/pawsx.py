"""PAWS-X: adversarial paraphrase identification in 7 languages (Yang et al., 2019)."""
from . import Task, register

register(Task(
    name="pawsx",
    kind="classification",
    labels=("not_paraphrase", "paraphrase"),
    metric="accuracy",
    description="Paraphrase identification (sentence1, sentence2 -> paraphrase or not)",
    hub_id="google-research-datasets/paws-x",
    hub_configs={"deu": "de", "eng": "en", "spa": "es", "fra": "fr", "jpn": "ja", "kor": "ko",
                 "zho": "zh"},
    text_fields=("sentence1", "sentence2"),
    label_field="label",
    prompt="pawsx sentence1: {sentence1} sentence2: {sentence2}",
    verbalizer={"not_paraphrase": "no", "paraphrase": "yes"},
))
