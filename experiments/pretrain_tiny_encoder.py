"""Pretrain a small multilingual BERT-style encoder from scratch on UD PUD + UDHR text.

Hub weights (XLM-R, mBERT) cannot be fetched on an offline GPU machine; this gives the grid a
multilingual encoder whose cross-lingual transfer is real (shared WordPiece vocabulary, masked
language modelling on 21 PUD languages and the UDHR in the same languages), if far weaker than
XLM-R.  Output: a Hugging Face model folder (``BertForMaskedLM`` + tokenizer) that
``experiments/gpu_small_grid.yaml`` loads as ``model: {pretrained: runs/pretrained_encoder}``.

    export XLTSTATS_MIRROR=/path/to/shared/data/published
    python experiments/pretrain_tiny_encoder.py --out experiments/runs/pretrained_encoder \
        --size base --steps 20000                       # GPU run time not measured yet
    python experiments/pretrain_tiny_encoder.py --out /tmp/enc --size tiny --steps 20   # CPU smoke test

Only the PUD *train* sentences (the udpos task's split: sentence index i with i % 5 != 4) are
used, so no POS test sentence, in any language, is seen in pretraining.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from xltstats._io import atomic_write_dir

SIZES = {  # hidden, layers, heads, intermediate
    "tiny": (128, 2, 2, 512),
    "small": (256, 4, 4, 1024),
    "base": (768, 12, 12, 3072),
}


def corpus(languages: list[str], use_udhr: bool = True) -> dict[str, list[str]]:
    """Raw text lines per language: PUD train sentences (+ UDHR paragraphs)."""
    from xltstats.experiments.tasks import get_task

    udpos = get_task("udpos")
    texts: dict[str, list[str]] = {}
    for lang in languages:
        texts[lang] = [" ".join(e["tokens"]) for e in udpos.load("ud", lang, "train")]
    if use_udhr:
        try:
            from xltstats.features.corpora import load_parallel
        except ImportError:
            load_parallel = None
        if load_parallel is not None:
            for lang, units in load_parallel("udhr", languages).items():
                for text in units.values():
                    texts.setdefault(lang, []).extend(s for s in text.split("\n") if s.strip())
    return texts


def mask_tokens(ids, tokenizer, generator, prob=0.15):
    """BERT masking: 15% of non-special tokens; of those 80% [MASK], 10% random, 10% kept."""
    import torch

    labels = ids.clone()
    special = torch.zeros_like(ids, dtype=torch.bool)
    for sid in tokenizer.all_special_ids:
        special |= ids == sid
    chosen = (torch.rand(ids.shape, generator=generator) < prob) & ~special
    labels[~chosen] = -100
    r = torch.rand(ids.shape, generator=generator)
    ids = ids.clone()
    ids[chosen & (r < 0.8)] = tokenizer.mask_token_id
    rand = chosen & (r >= 0.8) & (r < 0.9)
    ids[rand] = torch.randint(len(tokenizer.all_special_ids), len(tokenizer), ids.shape,
                              generator=generator)[rand]
    return ids, labels


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--size", choices=sorted(SIZES), default="base")
    p.add_argument("--languages", default=None, help="comma-separated ISO 639-3 (default: all PUD)")
    p.add_argument("--no-udhr", action="store_true")
    p.add_argument("--vocab-size", type=int, default=32000)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true")
    args = p.parse_args(argv)

    import torch
    from transformers import BertConfig, BertForMaskedLM

    from xltstats.experiments import train as T
    from xltstats.experiments.tasks.udpos import pud_treebanks

    langs = args.languages.split(",") if args.languages else sorted(pud_treebanks()["treebanks"])
    texts = corpus(langs, use_udhr=not args.no_udhr)
    lines = [line for lang in sorted(texts) for line in texts[lang]]
    print(f"{len(lines)} lines in {len(texts)} languages", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix=f".{out.name}.tokenizer-", dir=out.parent)
    tokenizer = T.load_tokenizer(str(T.train_tokenizer(lines, Path(scratch.name) / "tokenizer", args.vocab_size,
                                                       deterministic=False)))

    device = T.pick_device()
    T.setup_torch({"tf32": True}, device)
    torch.manual_seed(args.seed)
    hidden, layers, heads, inter = SIZES[args.size]
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=inter,
                        max_position_embeddings=max(512, args.max_length),
                        pad_token_id=tokenizer.pad_token_id)
    model = BertForMaskedLM(config).to(device)
    forward = torch.compile(model) if args.compile and device.type == "cuda" else model
    enc = tokenizer(lines, truncation=True, max_length=args.max_length)["input_ids"]
    lengths = [len(x) for x in enc]
    opt = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.01,
                            fused=device.type == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / args.warmup, max(0.0, (args.steps - s) / max(1, args.steps - args.warmup))))
    gen = torch.Generator().manual_seed(args.seed)
    model.train()
    step, tokens, start = 0, 0, time.perf_counter()
    while step < args.steps:
        for idx in T.length_grouped_batches(lengths, args.batch_size, gen):
            width = max(lengths[i] for i in idx)
            ids = torch.full((len(idx), width), tokenizer.pad_token_id, dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, :lengths[i]] = torch.tensor(enc[i])
            mask = (ids != tokenizer.pad_token_id).long()
            ids, labels = mask_tokens(ids, tokenizer, gen)
            ids, mask, labels = (t.to(device, non_blocking=True) for t in (ids, mask, labels))
            with T.autocast(device, {"bf16": True}):
                loss = forward(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            tokens += int(mask.sum())
            step += 1
            if step % 200 == 0 or step == args.steps:
                rate = tokens / (time.perf_counter() - start)
                print(f"step {step}/{args.steps} loss {loss.item():.3f} {rate:,.0f} tokens/s", file=sys.stderr)
            if step >= args.steps:
                break
    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        (folder / "pretraining.json").write_text(json.dumps(
            {"languages": sorted(texts), "lines": len(lines), "steps": step, "size": args.size,
             "final_loss": float(loss.detach()), "seconds": time.perf_counter() - start}, indent=1) + "\n")

    atomic_write_dir(out, write, handle_signals=False)
    scratch.cleanup()
    print(f"saved {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
