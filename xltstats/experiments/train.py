"""Fine-tuning and evaluation with PyTorch (imported only when a job runs).

Efficiency choices, all of them no-ops on CPU except dynamic padding and length grouping:
bf16 autocast and TF32 on CUDA, fused AdamW, optional ``torch.compile``, pinned host memory with
non-blocking copies, dynamic padding of length-grouped batches (shuffled mega-batches sorted by
length, so batches have little padding but order is still random), evaluation in length-sorted
large batches (each target on its own, so a score never depends on what else was evaluated), and
tokenised data cached on disk keyed by tokenizer, task, data source, language, split and lengths.
The cache holds plain integer arrays (``.npz``, read with ``allow_pickle=False``): a cache file
written by someone else can at worst hold wrong numbers, never run code.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from functools import lru_cache
from pathlib import Path

import torch

from .._io import atomic_write_dir, atomic_write_with
from .plan import sample_indices  # noqa: F401 - re-exported for callers
from .tasks import Task

IGNORE = -100


# ---- devices ----------------------------------------------------------------------------------
# Device types on which the efficiency settings below are used.  bf16 autocast is left off on
# CPU: most CPUs have no bf16 matrix units, so it is slower there and only changes the scores;
# tests add "cpu" here to run the GPU code path on a CPU.
BF16_DEVICE_TYPES = {"cuda"}
PAD_MULTIPLE = {"cuda": 8}  # tensor-core friendly widths, fewer torch.compile recompilations


def pick_device(preference: str | None = None) -> torch.device:
    """``preference``, else ``$XLTSTATS_DEVICE`` (e.g. ``cpu``, ``cuda:1``), else CUDA when present."""
    wanted = preference or os.environ.get("XLTSTATS_DEVICE")
    if wanted:
        device = torch.device(wanted)
        if device.type == "cuda" and not torch.cuda.is_available():
            from ..errors import ConfigError

            raise ConfigError(f"device {wanted!r} asked for (XLTSTATS_DEVICE) but CUDA is not available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup_torch(hp: dict, device: torch.device) -> None:
    if hp.get("num_threads"):
        torch.set_num_threads(int(hp["num_threads"]))
    if device.type == "cuda" and hp.get("tf32", True):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")


def uses_bf16(device: torch.device, hp: dict) -> bool:
    """Whether forward passes run under bf16 autocast (weights and optimizer stay fp32)."""
    return bool(hp.get("bf16", True)) and device.type in BF16_DEVICE_TYPES


def autocast(device: torch.device, hp: dict):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=uses_bf16(device, hp))


# ---- tokenizers -------------------------------------------------------------------------------
def deterministic_wordpiece_vocab(texts, vocab_size: int, normalizer, pre_tokenizer,
                                  specials: list[str]) -> dict[str, int]:
    """A WordPiece vocabulary that depends only on the text: every character (as a word start
    and as a ``##`` continuation, so nothing is unknown), then whole words by descending
    frequency, ties broken alphabetically.

    The ``tokenizers`` WordPiece trainer breaks frequency ties in hash-map order, which differs
    from process to process; a run restarted after a kill must rebuild exactly the same
    tokenizer, so tiny studies use this instead.
    """
    from collections import Counter

    words: Counter = Counter()
    for text in texts:
        pieces = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
        words.update(w for w, _ in pieces)
    chars = sorted({c for w in words for c in w})
    vocab = list(specials) + chars + ["##" + c for c in chars]
    seen = set(vocab)
    for word, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(vocab) >= vocab_size:
            break
        if word not in seen:
            vocab.append(word)
            seen.add(word)
    return {token: i for i, token in enumerate(vocab)}


def train_tokenizer(texts, out_dir, vocab_size: int = 2000, *, deterministic: bool = True) -> Path:
    """Train a WordPiece tokenizer on ``texts`` and save it (atomically) as a HF tokenizer.

    ``deterministic=True`` (used by studies) builds the vocabulary with
    :func:`deterministic_wordpiece_vocab`; ``False`` uses the ``tokenizers`` trainer (better
    sub-words, but ties are broken differently in every process).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer, pre_tokenizer = normalizers.NFKC(), pre_tokenizers.Whitespace()
    texts = list(texts)
    if deterministic:
        vocab = deterministic_wordpiece_vocab(texts, vocab_size, normalizer, pre_tokenizer, specials)
        tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
        tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    else:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
        tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size,
                                                                 special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    tok.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   eos_token="[SEP]")
    return atomic_write_dir(out_dir, fast.save_pretrained, handle_signals=False)


def load_tokenizer(path_or_id: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path_or_id)


@lru_cache(maxsize=8)
def _tokenizer_fingerprint_cached(key: int, tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256((text + str(tokenizer.all_special_tokens)).encode()).hexdigest()[:16]


def tokenizer_fingerprint(tokenizer) -> str:
    return _tokenizer_fingerprint_cached(id(tokenizer), tokenizer)


# ---- features ---------------------------------------------------------------------------------
def encode(task: Task, arch: str, tokenizer, examples: list[dict], hp: dict) -> list[dict]:
    """Token ids (and labels) of ``examples``; no padding (done per batch)."""
    max_len = hp["max_length"]
    if arch == "seq2seq":
        enc = tokenizer([task.seq2seq_input(e) for e in examples], truncation=True, max_length=max_len)
        tgt = tokenizer(text_target=[task.seq2seq_target(e) for e in examples], truncation=True,
                        max_length=hp["max_target_length"])
        return [{"input_ids": i, "labels": t} for i, t in zip(enc["input_ids"], tgt["input_ids"])]
    if task.kind == "classification":
        columns = list(zip(*[e["text"] for e in examples]))
        enc = tokenizer(*[list(c) for c in columns], truncation=True, max_length=max_len)
        feats = []
        for i, e in enumerate(examples):
            f = {"input_ids": enc["input_ids"][i], "labels": e["label"]}
            if "token_type_ids" in enc:
                f["token_type_ids"] = enc["token_type_ids"][i]
            feats.append(f)
        return feats
    enc = tokenizer([e["tokens"] for e in examples], is_split_into_words=True, truncation=True,
                    max_length=max_len)
    feats = []
    for i, e in enumerate(examples):
        word_ids = enc.word_ids(i)
        labels, first_token, previous = [], [], None
        for pos, w in enumerate(word_ids):
            if w is not None and w != previous:
                labels.append(e["tags"][w])
                first_token.append(pos)
            else:
                labels.append(IGNORE)
            previous = w
        feats.append({"input_ids": enc["input_ids"][i], "labels": labels, "first_token": first_token})
    return feats


def cached_encode(cache_dir, task: Task, data: str, lang: str, split: str, arch: str, tokenizer,
                  examples: list[dict], hp: dict) -> list[dict]:
    """:func:`encode` through an on-disk cache keyed by tokenizer + task + language + split."""
    content = hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest()[:16]
    key = hashlib.sha256(json.dumps([tokenizer_fingerprint(tokenizer), task.name, data, lang, split,
                                     arch, hp["max_length"], hp["max_target_length"], content]
                                    ).encode()).hexdigest()[:24]
    path = Path(cache_dir) / "tokenized" / f"{task.name}-{lang}-{split}-{key}.npz"
    if path.is_file():
        feats = load_features(path)
        if feats is not None and len(feats) == len(examples):
            return feats
        # a damaged or foreign cache file is rebuilt (replaced atomically below)
    feats = encode(task, arch, tokenizer, examples, hp)
    save_features(feats, path)
    return feats


_CACHE_FORMAT = "xltstats-tokenized-v1"


def save_features(feats: list[dict], path) -> None:
    """Write encoded features as integer arrays (one flat array and offsets per list field)."""
    import numpy as np

    path = Path(path)
    keys = sorted({k for f in feats for k in f})
    arrays = {"format": np.array(_CACHE_FORMAT), "n": np.array(len(feats), dtype=np.int64)}
    for k in keys:
        values = [f.get(k) for f in feats]
        if all(isinstance(v, (list, tuple)) for v in values):
            lengths = np.array([len(v) for v in values], dtype=np.int64)
            arrays[f"list.{k}.offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            arrays[f"list.{k}.values"] = np.array([x for v in values for x in v], dtype=np.int64)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            arrays[f"int.{k}"] = np.array(values, dtype=np.int64)
        else:
            return  # not a shape this cache stores: leave it uncached rather than guess

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would add ".npz" to a name
            np.savez(fh, **arrays)

    atomic_write_with(path, write)


def load_features(path) -> list[dict] | None:
    """Features written by :func:`save_features`, or None when the file is not a valid cache
    (damaged, foreign or of another format).  Never unpickles anything."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as archive:
            if str(archive["format"]) != _CACHE_FORMAT:
                return None
            n = int(archive["n"])
            columns = {}
            for name in archive.files:
                kind, _, rest = name.partition(".")
                if kind == "int":
                    values = archive[name]
                    if values.dtype.kind != "i" or values.shape != (n,):
                        return None
                    columns[rest] = values.tolist()
                elif kind == "list" and rest.endswith(".offsets"):
                    field = rest[: -len(".offsets")]
                    offsets, flat = archive[name], archive[f"list.{field}.values"]
                    if offsets.dtype.kind != "i" or flat.dtype.kind != "i" \
                            or offsets.shape != (n + 1,) or offsets[0] != 0 \
                            or offsets[-1] != len(flat) or (np.diff(offsets) < 0).any():
                        return None
                    flat_list = flat.tolist()
                    bounds = offsets.tolist()
                    columns[field] = [flat_list[bounds[i]:bounds[i + 1]] for i in range(n)]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return [{k: columns[k][i] for k in columns} for i in range(n)]


def length_grouped_batches(lengths: list[int], batch_size: int, generator: torch.Generator,
                           group: int = 50) -> list[list[int]]:
    """Random batches of similar length: shuffle, sort mega-batches by length, shuffle batches."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    mega = batch_size * group
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start:start + mega], key=lambda i: -lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    perm = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in perm]


def pad_batch(features: list[dict], pad_id: int, multiple: int = 1) -> dict:
    """Dynamic padding: a batch as wide as its longest example (rounded up to ``multiple``)."""
    width = max(len(f["input_ids"]) for f in features)
    width = -(-width // multiple) * multiple
    n = len(features)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in features[0]:
        batch["token_type_ids"] = torch.zeros((n, width), dtype=torch.long)
    for i, f in enumerate(features):
        k = len(f["input_ids"])
        ids[i, :k] = torch.tensor(f["input_ids"])
        mask[i, :k] = 1
        if "token_type_ids" in batch:
            batch["token_type_ids"][i, :k] = torch.tensor(f["token_type_ids"])
    labels = [f["labels"] for f in features]
    if isinstance(labels[0], list):
        lw = max(len(x) for x in labels)
        lab = torch.full((n, lw), IGNORE, dtype=torch.long)
        for i, x in enumerate(labels):
            lab[i, :len(x)] = torch.tensor(x)
        batch["labels"] = lab
    else:
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
    return batch


def collate(features: list[dict], pad_id: int, device: torch.device) -> dict:
    """:func:`pad_batch` on the host, then to ``device`` (pinned, non-blocking on CUDA)."""
    batch = pad_batch(features, pad_id, PAD_MULTIPLE.get(device.type, 1))
    if device.type == "cuda":
        return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
    return batch


# ---- models -----------------------------------------------------------------------------------
def _auto_class(arch: str, task: Task):
    import transformers as tf

    if arch == "seq2seq":
        return tf.AutoModelForSeq2SeqLM
    return tf.AutoModelForSequenceClassification if task.kind == "classification" \
        else tf.AutoModelForTokenClassification


def architecture(model_spec: dict) -> str:
    from transformers import AutoConfig

    if "config" in model_spec:
        return "seq2seq" if model_spec["config"].get("is_encoder_decoder",
                                                    model_spec["config"]["model_type"] in ("t5", "mt5", "bart", "mbart")) \
            else "encoder"
    config = AutoConfig.from_pretrained(model_spec["pretrained"])
    return "seq2seq" if getattr(config, "is_encoder_decoder", False) else "encoder"


def build_model(model_spec: dict, task: Task, arch: str, tokenizer, seed: int):
    """A fresh model for ``task``: pretrained weights (new head) or random init from a config."""
    from transformers import AutoConfig

    torch.manual_seed(seed)  # head (or whole model) initialisation
    cls = _auto_class(arch, task)
    extra = {} if arch == "seq2seq" else {
        "num_labels": len(task.labels),
        "id2label": dict(enumerate(task.labels)),
        "label2id": {n: i for i, n in enumerate(task.labels)},
    }
    if "config" in model_spec:
        cfg = dict(model_spec["config"])
        model_type = cfg.pop("model_type")
        cfg.setdefault("vocab_size", len(tokenizer))
        cfg.setdefault("pad_token_id", tokenizer.pad_token_id)
        if arch == "seq2seq":
            eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
            cfg.setdefault("eos_token_id", eos)
            cfg.setdefault("decoder_start_token_id", tokenizer.pad_token_id)
        config = AutoConfig.for_model(model_type, **cfg, **extra)
        return cls.from_config(config)
    return cls.from_pretrained(model_spec["pretrained"], **extra)


def save_checkpoint(model, tokenizer, path) -> None:
    write_checkpoint(path, getattr(model, "_orig_mod", model).save_pretrained)


def write_checkpoint(path, write) -> Path:
    """Write the checkpoint folder ``path`` atomically: ``write(folder)`` fills a partial folder,
    a ``COMPLETE`` marker (:func:`checkpoint_complete`) is added, and the folder is swapped into
    place (:func:`xltstats._io.atomic_write_dir`; SIGTERM keeps its default)."""
    def fill(folder: Path) -> None:
        write(folder)
        (folder / "COMPLETE").write_text("ok\n")

    return atomic_write_dir(path, fill, handle_signals=False)


def load_checkpoint(path, task: Task, arch: str):
    return _auto_class(arch, task).from_pretrained(path)


def checkpoint_complete(path) -> bool:
    return (Path(path) / "COMPLETE").is_file()


# ---- training ---------------------------------------------------------------------------------
def train(model, features: list[dict], hp: dict, *, seed: int, device: torch.device, pad_id: int,
          desc: str = "train", progress: bool = True) -> dict:
    """Fine-tune ``model`` in place (AdamW, linear warmup/decay); returns throughput stats."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)  # dropout
    generator = torch.Generator().manual_seed(seed)
    bs = int(hp["batch_size"])
    steps_per_epoch = math.ceil(len(features) / bs)
    total = int(hp["max_steps"]) if hp.get("max_steps") else max(1, math.ceil(hp["epochs"] * steps_per_epoch))
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp.get("weight_decay", 0.0)},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=hp["learning_rate"], fused=device.type == "cuda")
    warmup = int(total * hp.get("warmup_ratio", 0.0))

    def schedule(step):
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    forward = torch.compile(model, dynamic=True) if hp.get("compile") and device.type == "cuda" else model
    # real (unpadded) tokens per example: encoder input, plus decoder labels for seq2seq
    seq2seq = isinstance(features[0]["labels"], list) and "first_token" not in features[0]
    source_lengths = [len(f["input_ids"]) for f in features]
    target_lengths = [len(f["labels"]) if seq2seq else 0 for f in features]
    lengths = [s + t for s, t in zip(source_lengths, target_lengths)]
    model.train()
    step, tokens, source_tokens, losses = 0, 0, 0, []
    start = time.perf_counter()
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)
    while step < total:
        for idx in length_grouped_batches(lengths, bs, generator, hp.get("length_group_size", 50)):
            batch = collate([features[i] for i in idx], pad_id, device)
            with autocast(device, hp):
                loss = forward(**batch).loss
            loss.backward()
            if hp.get("max_grad_norm"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), hp["max_grad_norm"])
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            tokens += sum(lengths[i] for i in idx)  # counted on the host: no device sync per step
            source_tokens += sum(source_lengths[i] for i in idx)
            losses.append(loss.detach())
            step += 1
            bar.update(1)
            if step >= total:
                break
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    model.eval()
    final_loss = float(torch.stack(losses[-10:]).float().mean()) if losses else float("nan")
    # tokens = encoder (source_tokens) + decoder (target_tokens, seq2seq only) tokens
    return {"steps": step, "tokens": tokens, "source_tokens": source_tokens,
            "target_tokens": tokens - source_tokens, "seconds": seconds, "loss": final_loss,
            "tokens_per_s": tokens / seconds if seconds > 0 else float("nan")}


# ---- prediction -------------------------------------------------------------------------------
@torch.no_grad()
def predict(model, task: Task, arch: str, tokenizer, examples: list[dict], features: list[dict],
            hp: dict, device: torch.device, progress: bool = True) -> list:
    """Predicted label ids (classification) or tag-id lists (tagging), in example order."""
    from tqdm.auto import tqdm

    model.eval()
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    bs = int(hp["eval_batch_size"])
    out: list = [None] * len(features)
    if arch == "seq2seq":  # generation budget from the task, never from the gold answers
        if task.kind == "classification":
            budget = max(len(tokenizer(text_target=task.verbalize(i))["input_ids"])
                         for i in range(len(task.labels))) + 1
        else:
            budget = int(hp["max_target_length"])
    for start in tqdm(range(0, len(order), bs), desc="evaluate", disable=not progress, leave=False):
        idx = order[start:start + bs]
        batch = collate([features[i] for i in idx], tokenizer.pad_token_id, device)
        labels = batch.pop("labels")
        with autocast(device, hp):
            if arch == "seq2seq":
                generated = model.generate(input_ids=batch["input_ids"],
                                           attention_mask=batch["attention_mask"],
                                           max_new_tokens=budget,
                                           do_sample=False, num_beams=1)
                texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
                for i, text in zip(idx, texts):
                    out[i] = task.parse_seq2seq_output(text, examples[i])
                continue
            logits = model(**batch).logits.float()
        pred = logits.argmax(-1).cpu()
        for row, i in enumerate(idx):
            if task.kind == "classification":
                out[i] = int(pred[row])
            else:
                tags = [int(pred[row, pos]) for pos in features[i]["first_token"]]
                n = len(examples[i]["tags"])
                out[i] = (tags + [-1] * n)[:n]  # words cut off by max_length count as wrong
        del labels
    return out


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
