"""Re-initialise chosen encoder blocks before fine-tuning (Muller et al. 2021, RANDOM-INIT).

``reinit_layers`` in a study's model spec names 0-based encoder block indices (never regexes: the
released code's ``layer.1`` also matched ``layer.10``).  Every parameter of those blocks is drawn
again with the model's own initialisation (``_init_weights``: for BERT/XLM-R, Linear weights
N(0, initializer_range), biases 0, LayerNorm weight 1, bias 0), from a generator seeded by (seed,
"reinit", blocks).  Embeddings, other blocks and the task head are untouched.

transformers 5 marks weights loaded by ``from_pretrained`` with ``_is_hf_initialized`` and its
init functions then skip them silently; the flag is cleared on the chosen blocks' tensors first,
and afterwards the code checks that every tensor of the chosen blocks changed (those whose init
is random) or equals its deterministic init value (LayerNorm, biases), and that every other
tensor is bit-identical to before.  Hidden-state convention: layer 0 = embeddings, layer i = output
of block i-1, so re-initialising block 0 leaves ``hidden_states[0]`` unchanged.
"""
from __future__ import annotations

import zlib

from ..errors import ConfigError


def condition_text(blocks) -> str:
    """``reinit=0-1`` (blocks joined by -), ``reinit=none`` for the baseline."""
    return "reinit=" + ("-".join(str(b) for b in blocks) if blocks else "none")


def encoder_blocks(model):
    """The ModuleList of encoder blocks of a BERT-like model (``encoder.layer``) or T5 (``block``)."""
    base = getattr(model, "base_model", model)
    for path in ("encoder.layer", "encoder.block", "layers", "h"):
        obj = base
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return obj, path
    raise ConfigError(f"cannot find the encoder blocks of {type(model).__name__} for reinit_layers")


def reinitialize(model, blocks, seed: int) -> dict:
    """Re-initialise ``blocks`` of ``model`` in place; returns {changed, unchanged, reset} counts."""
    import torch

    layers, path = encoder_blocks(model)
    blocks = sorted(set(int(b) for b in blocks))
    bad = [b for b in blocks if not 0 <= b < len(layers)]
    if bad:
        raise ConfigError(f"reinit_layers: block {bad[0]} out of range; the model has blocks "
                          f"0..{len(layers) - 1}")
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    prefix = {id(p): None for b in blocks for p in layers[b].parameters()}
    generator_seed = zlib.crc32(f"{int(seed)}/reinit/{'-'.join(map(str, blocks))}".encode())
    state = torch.random.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        torch.manual_seed(generator_seed)
        init = getattr(model, "_init_weights", None)
        for b in blocks:
            for module in layers[b].modules():
                for p in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False)):
                    if hasattr(p, "_is_hf_initialized"):
                        p._is_hf_initialized = False
                if hasattr(module, "_is_hf_initialized"):
                    module._is_hf_initialized = False
                if init is not None:
                    with torch.no_grad():
                        init(module)
                else:
                    _torch_init(module, getattr(model.config, "initializer_range", 0.02))
    finally:
        torch.random.set_rng_state(state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
    after = model.state_dict()
    names_in_blocks = {f"{n}" for n, p in model.named_parameters() if id(p) in prefix}
    changed, reset, untouched = 0, 0, 0
    for name, old in before.items():
        new = after[name]
        if name in names_in_blocks:
            if torch.equal(old, new):
                # only tensors whose init is a constant (LayerNorm 1/0, bias 0) may stay equal, and
                # only if they already held that constant
                if not (torch.all(new == 0) or torch.all(new == 1)):
                    raise AssertionError(f"reinit_layers: {name} was not re-initialised")
                reset += 1
            else:
                changed += 1
        elif not torch.equal(old, new):
            raise AssertionError(f"reinit_layers: {name} is outside blocks {blocks} but changed")
        else:
            untouched += 1
    if changed == 0:
        raise AssertionError(f"reinit_layers: no tensor of blocks {blocks} changed")
    return {"changed": changed, "constant": reset, "untouched": untouched, "blocks": blocks, "path": path}


def _torch_init(module, std: float) -> None:
    import torch

    with torch.no_grad():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, torch.nn.LayerNorm):
            torch.nn.init.ones_(module.weight)
            torch.nn.init.zeros_(module.bias)
        elif isinstance(module, torch.nn.Embedding):
            torch.nn.init.normal_(module.weight, 0.0, std)
