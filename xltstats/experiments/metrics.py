"""Task metrics as proportions (0-1, the native scale of ``xltstats.results.METRICS``):
accuracy, token accuracy and entity-level span F1."""
from __future__ import annotations


def accuracy(gold: list, pred: list) -> float:
    """Classification accuracy (invalid predictions, -1, count as wrong)."""
    if not gold:
        raise ValueError("no examples to score")
    return sum(g == p for g, p in zip(gold, pred)) / len(gold)


def token_accuracy(gold: list[list[int]], pred: list[list[int]]) -> float:
    """Token-level tagging accuracy over all tokens."""
    total = sum(len(g) for g in gold)
    if not total:
        raise ValueError("no tokens to score")
    return sum(a == b for g, p in zip(gold, pred) for a, b in zip(g, p)) / total


def iob2_spans(tags: list[str]) -> set[tuple[str, int, int]]:
    """Entity spans ``(type, start, end)`` (end exclusive) of an IOB2 tag sequence.

    Like conlleval, an ``I-X`` that does not continue an ``X`` entity starts a new one.
    """
    spans = set()
    kind, start = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, label = tag.partition("-") if tag not in ("O", None) else ("O", "", None)
        continues = prefix == "I" and kind == label
        if kind is not None and not continues:
            spans.add((kind, start, i))
            kind = None
        if prefix == "B" or (prefix == "I" and not continues):
            kind, start = label, i
    return spans


def span_f1(gold: list[list[str]], pred: list[list[str]]) -> float:
    """Micro-averaged entity-level F1 over IOB2 tag sequences."""
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, pred):
        gs, ps = iob2_spans(g), iob2_spans(p)
        tp += len(gs & ps)
        n_gold += len(gs)
        n_pred += len(ps)
    if n_gold == 0 and n_pred == 0:
        return 1.0
    if tp == 0:
        return 0.0
    precision, recall = tp / n_pred, tp / n_gold
    return 2 * precision * recall / (precision + recall)


def score(task, gold_examples: list[dict], predictions: list) -> float:
    """Score of ``predictions`` (label ids or tag-id lists, -1 = invalid) with the task's metric."""
    if task.kind == "classification":
        return accuracy([e["label"] for e in gold_examples], predictions)
    gold = [e["tags"] for e in gold_examples]
    if task.metric == "accuracy":
        return token_accuracy(gold, predictions)
    names = lambda seq: [task.labels[t] if t >= 0 else "O" for t in seq]  # noqa: E731
    return span_f1([names(g) for g in gold], [names(p) for p in predictions])
