"""Masked-LM text and training for adapter studies: each language's text, token blocks, BERT
masking and a seeded training loop (language adapters, continued MLM, the random base model).
Imports torch.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from ..errors import ConfigError
from .adapter_study import wiki_code


def mlm_lines(study, lang: str) -> list[str]:
    """Unlabelled text of ``lang`` from the study's text source (at most ``max_lines`` lines)."""
    spec = study.adapter_study.text
    if spec.source in ("udhr", "pud"):
        from ..features.corpora import load_parallel

        texts = load_parallel(spec.source, [lang]).get(lang)
        if not texts:
            raise ConfigError(f"{study.path}: field 'adapter_study.text': no {spec.source} text for {lang!r}")
        lines = [texts[k] for k in sorted(texts)]
    elif spec.source == "dir":
        path = Path(spec.path) / f"{lang}.txt"
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    else:
        import datasets

        ds = datasets.load_dataset("wikimedia/wikipedia", f"20231101.{wiki_code(lang)}",
                                   split="train", streaming=True)
        lines = []
        for record in ds:
            lines += [p.strip() for p in record["text"].split("\n")]
            if len(lines) >= spec.max_lines:
                break
    lines = [line for line in lines if line]
    return lines[:spec.max_lines]


def mlm_blocks(tokenizer, lines: list[str], max_length: int) -> list[list[int]]:
    """Token blocks of ``max_length`` (HF ``group_texts``): lines tokenised without special tokens,
    concatenated, cut into blocks of ``max_length - 2`` and framed by [CLS] ... [SEP]."""
    ids: list[int] = []
    for enc in tokenizer(lines, add_special_tokens=False)["input_ids"]:
        ids += enc
    size = max_length - 2
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls is None:
        cls, sep = tokenizer.bos_token_id, tokenizer.eos_token_id
    blocks = [ids[i:i + size] for i in range(0, max(len(ids) - size + 1, 1), size)]
    return [[cls] + b + [sep] for b in blocks if b]


def mask_tokens(ids: torch.Tensor, tokenizer, probability: float, generator: torch.Generator):
    """BERT masking: ``probability`` of the non-special tokens are predicted; of them 80 % become
    [MASK], 10 % a random token, 10 % stay."""
    labels = ids.clone()
    special = torch.zeros_like(ids, dtype=torch.bool)
    for token in tokenizer.all_special_ids:
        special |= ids == token
    chosen = (torch.rand(ids.shape, generator=generator) < probability) & ~special
    labels[~chosen] = -100
    inputs = ids.clone()
    replace = chosen & (torch.rand(ids.shape, generator=generator) < 0.8)
    inputs[replace] = tokenizer.mask_token_id
    random_ = chosen & ~replace & (torch.rand(ids.shape, generator=generator) < 0.5)
    inputs[random_] = torch.randint(len(tokenizer), ids.shape, generator=generator)[random_]
    return inputs, labels


def mlm_train(model, tokenizer, blocks, *, steps: int, learning_rate: float, batch_size: int,
              seed: int, probability: float, params, device, weight_decay: float = 0.0) -> dict:
    """``steps`` MLM steps (AdamW, linear decay, no warm-up) on ``params``; seeded batches and masks."""
    if not blocks:
        raise ConfigError("no MLM text after tokenisation")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    params = list(params)
    opt = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (steps - s) / steps))
    pad = tokenizer.pad_token_id
    order: list[int] = []
    model.train()
    tokens, losses, start = 0, [], time.perf_counter()
    for _ in range(steps):
        if len(order) < batch_size:
            order += torch.randperm(len(blocks), generator=generator).tolist() * \
                max(1, math.ceil(batch_size / len(blocks)))
        idx, order = order[:batch_size], order[batch_size:]
        width = max(len(blocks[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, :len(blocks[i])] = torch.tensor(blocks[i])
            mask[row, :len(blocks[i])] = 1
        inputs, labels = mask_tokens(ids, tokenizer, probability, generator)
        labels[mask == 0] = -100
        out = model(input_ids=inputs.to(device), attention_mask=mask.to(device), labels=labels.to(device))
        loss = out.loss
        if torch.isfinite(loss):  # a batch without a masked token has no loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(mask.sum())
        losses.append(float(loss.detach()))
    model.eval()
    seconds = time.perf_counter() - start
    finite = [x for x in losses if math.isfinite(x)]
    return {"steps": steps, "tokens": tokens, "sequences": steps * batch_size, "seconds": seconds,
            "tokens_per_s": tokens / seconds if seconds > 0 else float("nan"),
            "loss": sum(finite[-10:]) / max(1, len(finite[-10:]))}
