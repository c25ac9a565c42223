"""Fine-tuning throughput: tokens/s, and model FLOPs utilisation (MFU) on a GPU.

    python benchmarks/finetune.py --config experiments/tiny_cpu.yaml            # CPU: tokens/s
    python benchmarks/finetune.py --config experiments/gpu_small_grid.yaml      # GPU: tokens/s + MFU
    python benchmarks/finetune.py --config experiments/mt5_90pairs.yaml --task xnli --synthetic 128

It runs the runner's own training loop (:func:`xltstats.experiments.train.train`: bf16 autocast,
fused AdamW, TF32, dynamic padding, length-grouped batches, optional ``torch.compile``) on the
study's first task and source language (or on synthetic sequences of a fixed length with
``--synthetic LEN``), discards warm-up steps, and reports the rest.

MFU = achieved model FLOP/s / peak dense bf16 FLOP/s of the device, with the usual 6·N·D
training estimate (forward 2·N·D + backward 4·N·D), N the parameters that do matrix
multiplications (embedding tables are lookups and left out; an untied output projection is
counted), D the real (unpadded) tokens of the batches run: for encoder-decoder models, the
encoder's parameters and the decoder's cross-attention key/value projections times source tokens,
plus the rest of the decoder (with the output projection) times target tokens.  Attention score
FLOPs are ignored (small at these lengths), so the estimate is conservative.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

PEAK_BF16_TFLOPS = {  # dense (no sparsity) bf16 tensor-core peaks from the vendor data sheets
    "H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0,
    "H200": 989.0, "GH200": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0, "L4": 121.0,
}


def peak_tflops(device_name: str) -> float | None:
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if key.lower() in device_name.lower():
            return PEAK_BF16_TFLOPS[key]
    if "h100" in device_name.lower():
        return 989.0
    return None


# Decoder cross-attention projections of keys and values run over the encoder's output, once per
# source token (T5/mT5: EncDecAttention.k/.v; BART/mBART/Marian: encoder_attn.k_proj/.v_proj).
CROSS_ATTENTION_KV = re.compile(r"(EncDecAttention\.[kv]|encoder_attn\.[kv]_proj)\.")


def matmul_parameters(model) -> tuple[int, int]:
    """Parameters that multiply (source tokens, target tokens), embedding tables left out.

    Encoder-only models: all of them act on the (source) tokens, ``(N, 0)``.  Encoder-decoder
    models: the encoder and the decoder's cross-attention key/value projections act on source
    tokens, the rest of the decoder (with the output projection) on target tokens.
    """
    import torch

    embedding_ids = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding)
                     for p in m.parameters()}
    out = getattr(model, "get_output_embeddings", lambda: None)()
    if out is not None and id(out.weight) in embedding_ids:
        embedding_ids.discard(id(out.weight))  # tied output projection is a real matmul
    counted = {}
    for name, p in model.named_parameters(remove_duplicate=True):
        if id(p) not in embedding_ids:
            counted[name] = p.numel()
    if getattr(model.config, "is_encoder_decoder", False):
        source = sum(n for k, n in counted.items()
                     if k.startswith("encoder.") or ".encoder." in k or CROSS_ATTENTION_KV.search(k))
        return source, sum(counted.values()) - source
    return sum(counted.values()), 0


def training_flops(source_parameters: int, target_parameters: int, source_tokens: int,
                   target_tokens: int = 0) -> float:
    """Model FLOPs of training on these tokens: 6·N·D (forward 2·N·D, backward 4·N·D) for each
    set of parameters and the tokens it multiplies (:func:`matmul_parameters`).

    Encoder-only models: ``target_parameters = target_tokens = 0``.
    """
    return 6.0 * (source_parameters * source_tokens + target_parameters * target_tokens)


def synthetic_features(n: int, length: int, vocab: int, arch: str, task, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (n, length), generator=g).tolist()
    if arch == "seq2seq":
        tgt = torch.randint(5, vocab, (n, max(2, length // 4)), generator=g).tolist()
        return [{"input_ids": i, "labels": t} for i, t in zip(ids, tgt)]
    if task.kind == "classification":
        return [{"input_ids": i, "labels": k % len(task.labels)} for k, i in enumerate(ids)]
    return [{"input_ids": i, "labels": [k % len(task.labels)] * length,
             "first_token": list(range(length))} for k, i in enumerate(ids)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="experiments/tiny_cpu.yaml")
    p.add_argument("--task", help="task of the study (default: the first)")
    p.add_argument("--source", help="language (default: the study's first source)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 50 GPU, 20 CPU)")
    p.add_argument("--warmup-steps", type=int, default=None, help="untimed steps first (default 10 GPU, 3 CPU)")
    p.add_argument("--batch-size", type=int, help="override the study's batch size")
    p.add_argument("--synthetic", type=int, metavar="LEN", help="random sequences of LEN tokens")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    p.add_argument("--peak-tflops", type=float, help="device peak dense bf16 TFLOP/s (default: by name)")
    p.add_argument("--out", help="also write the JSON result here")
    args = p.parse_args(argv)

    import torch

    from xltstats.experiments import train as T
    from xltstats.experiments.config import load_study
    from xltstats.experiments.runner import load_examples, study_tokenizer
    from xltstats.experiments.tasks import get_task

    study = load_study(args.config)
    task_name = args.task or study.tasks[0].name
    task, spec = get_task(task_name), study.task(task_name)
    source = args.source or study.sources[0]
    hp = dict(study.hyperparameters)
    if args.batch_size:
        hp["batch_size"] = args.batch_size
    if args.compile:
        hp["compile"] = True
    device = T.pick_device()
    T.setup_torch(hp, device)
    steps = args.steps or (50 if device.type == "cuda" else 20)
    warmup = args.warmup_steps if args.warmup_steps is not None else (10 if device.type == "cuda" else 3)

    tokenizer = study_tokenizer(study)
    arch = T.architecture(study.model)
    model = T.build_model(study.model, task, arch, tokenizer, seed=0).to(device)
    n_needed = (steps + warmup) * hp["batch_size"]
    if args.synthetic:
        feats = synthetic_features(n_needed, args.synthetic, len(tokenizer), arch, task)
    else:
        examples = load_examples(study, task_name, source, "train")
        feats = T.cached_encode(study.cache_dir, task, spec.data, source, "train", arch, tokenizer,
                                examples, hp)
    enc_params, dec_params = matmul_parameters(model)

    run = dict(hp, max_steps=warmup, warmup_ratio=0.0)
    if warmup:
        T.train(model, feats, run, seed=0, device=device, pad_id=tokenizer.pad_token_id,
                desc="warm-up", progress=False)
    timed = dict(hp, max_steps=steps, warmup_ratio=0.0)
    stats = T.train(model, feats, timed, seed=1, device=device, pad_id=tokenizer.pad_token_id,
                    desc="benchmark", progress=False)
    # train() counts the encoder (source) and decoder (target) tokens of the batches it ran
    flops = training_flops(enc_params, dec_params, stats["source_tokens"], stats["target_tokens"])
    result = {
        "config": str(args.config), "model": study.model_name, "task": task_name, "source": source,
        "architecture": arch, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "batch_size": hp["batch_size"], "steps": stats["steps"], "seconds": round(stats["seconds"], 6),
        "tokens": stats["tokens"], "source_tokens": stats["source_tokens"],
        "target_tokens": stats["target_tokens"], "tokens_per_s": round(stats["tokens_per_s"], 1),
        "source_token_parameters": enc_params, "target_token_parameters": dec_params,
        "matmul_parameters": enc_params + dec_params, "model_tflops_per_s": round(flops / stats["seconds"] / 1e12, 6),
        "bf16": T.uses_bf16(device, hp), "compile": bool(hp.get("compile")),
        "synthetic_length": args.synthetic,
    }
    if device.type == "cuda":
        peak = args.peak_tflops or peak_tflops(result["device"])
        result["peak_bf16_tflops"] = peak
        result["mfu"] = round(flops / stats["seconds"] / (peak * 1e12), 4) if peak else None
        result["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
