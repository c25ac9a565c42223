"""Bottleneck language/task adapters (Pfeiffer placement, optional NICE invertible adapter) on plain
transformers modules, their compositions, parameter averaging, and AdapterHub/MAD-X checkpoints.

The AdapterHub package (``adapters``) pins transformers 4.x and cannot be imported beside
transformers 5, so this module implements what the influence and language-arithmetic studies need
from it, on BERT / XLM-R encoders (and the feed-forward block of T5/mT5):

* :class:`AdapterConfig`: the bottleneck adapter of Pfeiffer et al. (AdapterHub ``seq_bn`` /
  ``pfeiffer``): after the feed-forward block of every layer, ``h1 = LN(ffn + x)``,
  ``out = LN(h1 + up(act(down(h1))) + x)`` (the layer's own LayerNorm used twice, as AdapterHub's
  ``original_ln_before=True, original_ln_after=True, residual_before_ln=True``); ``inv_adapter="nice"``
  adds the NICE invertible adapter of MAD-X on the embedding output (``seq_bn_inv``), whose inverse is
  applied before the masked-LM head.
* State-dict names follow AdapterHub's (``bert.encoder.layer.0.output.adapters.<name>.adapter_down.0.weight``,
  ``.adapter_up.weight``, ``bert.invertible_adapters.<name>.F.0.weight`` ...), so that
  :func:`read_adapter` reads an AdapterHub/MAD-X checkpoint folder (``adapter_config.json`` and
  ``pytorch_adapter.bin`` or ``.safetensors``) without that package, and :func:`save_adapter` writes
  the same layout.
* Compositions (:class:`Stack`, :class:`Average` (output averaging), :class:`Fuse` (AdapterFusion with
  untrained, seeded query/key and identity value, as a freshly added AdapterHub fusion layer)) and
  :func:`merge_adapters` (parameter averaging ``sum_i w_i theta_i`` over every tensor, invertible
  parts included; refuses adapters of different configurations).
* LoRA through peft as a second backend: :func:`lora_weighted_adapter` combines LoRA adapters with
  ``combination_type="cat"``, the only peft combination that is the weighted sum of the LoRA
  updates (peft's ``linear`` combines A and B separately, so B·A has cross terms).

Importing this module imports torch.  The layers and their wiring are in :mod:`._adapter_modules`,
the files in :mod:`._adapter_files`; every public name is importable from here.
"""
from __future__ import annotations

import math
import re
from dataclasses import fields

import torch
from torch import nn

from ..errors import ConfigError
from ._adapter_files import (CONFIG_NAME, HEAD_NAME, WEIGHTS_NAME, AdapterState, read_adapter,  # noqa: F401
                             read_head, save_adapter)
from ._adapter_modules import (ACTIVATIONS, AdapterConfig, Average, Bottleneck, FusionLayer,  # noqa: F401
                               Fuse, NICECoupling, Stack, _controller, _fusion_key)

__all__ = [
    "AdapterConfig", "Stack", "Average", "Fuse", "AdapterState", "add_adapter", "set_active",
    "adapter_state", "load_adapter_state", "merge_adapters", "save_adapter", "read_adapter",
    "adapter_names", "remove_adapter", "flat_vector", "weight_similarity", "lora_weighted_adapter",
    "ACTIVATIONS",
]


# --------------------------------------------------------------------------- public functions

def add_adapter(model, name: str, config: AdapterConfig, *, seed: int = 0) -> None:
    """Add adapter ``name`` to every layer (and its invertible adapter) with weights from ``seed``.

    The same seed and configuration give the same initial weights in any model of the same size
    (what language arithmetic relies on).
    """
    ctl = _controller(model)
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise ConfigError(f"adapter name {name!r}: use letters, digits, '_' and '-'")
    if name in ctl.configs:
        raise ConfigError(f"adapter {name!r} already exists in this model")
    if config.inv_adapter and ctl.kind == "t5":
        raise ConfigError("invertible adapters are implemented for BERT/XLM-R encoders only")
    generator = torch.Generator().manual_seed(int(seed))
    for module in ctl.layers:
        adapter = Bottleneck(ctl.hidden, config)
        _init(adapter, config, generator)
        module.adapters[name] = adapter.to(_device_of(module))
    if config.inv_adapter:
        inv = NICECoupling(ctl.hidden, config)
        _init(inv, config, generator)
        ctl.base.invertible_adapters[name] = inv.to(_device_of(ctl.base))
    ctl.configs[name] = config


def _device_of(module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def _init(module: nn.Module, config: AdapterConfig, generator: torch.Generator) -> None:
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.Linear):
                sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator) * 0.02)
                sub.bias.zero_()
        if config.init_weights == "mam_adapter" and isinstance(module, Bottleneck):
            module.adapter_up.weight.zero_()


def adapter_names(model) -> list[str]:
    return list(_controller(model).configs)


def remove_adapter(model, name: str) -> None:
    ctl = _controller(model)
    for module in ctl.layers:
        if name in module.adapters:
            del module.adapters[name]
    if name in ctl.base.invertible_adapters:
        del ctl.base.invertible_adapters[name]
    ctl.configs.pop(name, None)
    if ctl.active is not None and name in _names_in(ctl.active):
        ctl.active = None


def _names_in(composition: Stack) -> list[str]:
    out = []
    for block in composition.blocks:
        out += [block] if isinstance(block, str) else list(block.names)
    return out


def set_active(model, composition) -> None:
    """Activate a composition: an adapter name, a :class:`Stack` of blocks, or ``None`` (none)."""
    ctl = _controller(model)
    if composition is None:
        ctl.active = None
        return
    if isinstance(composition, (str, Average, Fuse)):
        composition = Stack(composition)
    if not isinstance(composition, Stack) or not composition.blocks:
        raise ConfigError(f"not an adapter composition: {composition!r}")
    for name in _names_in(composition):
        if name not in ctl.configs:
            raise ConfigError(f"no adapter {name!r} in the model; adapters: "
                              f"{', '.join(ctl.configs) or 'none'}")
    for block in composition.blocks:
        if isinstance(block, Average):
            if block.weights is not None and len(block.weights) != len(block.names):
                raise ConfigError(f"{len(block.names)} adapters but {len(block.weights)} weights")
        if isinstance(block, Fuse):
            key = _fusion_key(block)
            generator = torch.Generator().manual_seed(int(block.seed))
            for module in ctl.layers:
                if key not in module.adapter_fusion_layer:
                    module.adapter_fusion_layer[key] = FusionLayer(ctl.hidden, generator).to(
                        _device_of(module))
    ctl.active = composition


def trainable_only(model, names) -> list[nn.Parameter]:
    """Freeze every parameter of the base model except those of adapters ``names``; returns them."""
    ctl = _controller(model)
    names = set([names] if isinstance(names, str) else names)
    params = []
    for pname, param in ctl.base.named_parameters():
        own = any(f"adapters.{n}." in pname for n in names)
        param.requires_grad_(own)
        if own:
            params.append(param)
    return params


def adapter_state(model, name: str) -> AdapterState:
    ctl = _controller(model)
    if name not in ctl.configs:
        raise ConfigError(f"no adapter {name!r} in the model")
    tensors = {}
    for i, module in enumerate(ctl.layers):
        for pname, value in module.adapters[name].state_dict().items():
            tensors[f"layer.{i}.{pname}"] = value.detach().cpu().clone()
    if name in ctl.base.invertible_adapters:
        for pname, value in ctl.base.invertible_adapters[name].state_dict().items():
            tensors[f"invertible.{pname}"] = value.detach().cpu().clone()
    return AdapterState(name, ctl.configs[name], tensors)


def load_adapter_state(model, state: AdapterState, name: str | None = None) -> str:
    """Add ``state`` to ``model`` as adapter ``name`` (default: its own name); returns the name."""
    name = name or state.name
    add_adapter(model, name, state.config)
    ctl = _controller(model)
    expected = set(adapter_state(model, name).tensors)
    if expected != set(state.tensors):
        missing = sorted(expected - set(state.tensors))
        extra = sorted(set(state.tensors) - expected)
        remove_adapter(model, name)
        raise ConfigError(f"adapter {state.name!r} does not fit this model (missing "
                          f"{missing[:3]}, unexpected {extra[:3]}; is it for another model size "
                          f"or number of layers?)")
    with torch.no_grad():
        for i, module in enumerate(ctl.layers):
            for pname, param in module.adapters[name].state_dict(keep_vars=True).items():
                _copy(param, state.tensors[f"layer.{i}.{pname}"], state.name, pname)
        if name in ctl.base.invertible_adapters:
            for pname, param in ctl.base.invertible_adapters[name].state_dict(keep_vars=True).items():
                _copy(param, state.tensors[f"invertible.{pname}"], state.name, pname)
    return name


def _copy(param, value, adapter, pname):
    if tuple(param.shape) != tuple(value.shape):
        raise ConfigError(f"adapter {adapter!r}: {pname} has shape {tuple(value.shape)}, the model "
                          f"needs {tuple(param.shape)}")
    param.copy_(value.to(param.device, param.dtype))


def merge_adapters(states, weights, *, name: str = "merged", normalize: bool = False) -> AdapterState:
    """Parameter average ``sum_i w_i theta_i`` over every tensor, invertible parts included.

    All adapters must have the same configuration (size, activation, invertible part) and the same
    tensors. ``normalize=True`` divides the weights by their sum (AdapterHub's default); the
    default keeps them as given so that extrapolation (lambda > 1) stays possible.
    """
    states = list(states)
    weights = [float(w) for w in weights]
    if len(states) < 1 or len(states) != len(weights):
        raise ConfigError(f"merge needs one weight per adapter ({len(states)} adapters, "
                          f"{len(weights)} weights)")
    if not all(math.isfinite(w) for w in weights):
        raise ConfigError(f"merge weights must be finite, got {weights}")
    if normalize:
        total = sum(weights)
        if total == 0:
            raise ConfigError("merge weights sum to 0 and cannot be normalised")
        weights = [w / total for w in weights]
    first = states[0]
    for other in states[1:]:
        if other.config != first.config:
            diff = [f"{f.name}: {getattr(first.config, f.name)!r} vs {getattr(other.config, f.name)!r}"
                    for f in fields(AdapterConfig)
                    if getattr(first.config, f.name) != getattr(other.config, f.name)]
            raise ConfigError(f"adapters {first.name!r} and {other.name!r} have different "
                              f"configurations and cannot be merged ({'; '.join(diff)})")
        if set(other.tensors) != set(first.tensors):
            raise ConfigError(f"adapters {first.name!r} and {other.name!r} have different tensors "
                              f"and cannot be merged")
        for key, value in first.tensors.items():
            if other.tensors[key].shape != value.shape:
                raise ConfigError(f"adapters {first.name!r} and {other.name!r}: {key} has shapes "
                                  f"{tuple(value.shape)} and {tuple(other.tensors[key].shape)}")
    merged = {}
    for key in first.tensors:
        total = weights[0] * first.tensors[key].double()
        for w, state in zip(weights[1:], states[1:]):
            total = total + w * state.tensors[key].double()
        merged[key] = total.to(first.tensors[key].dtype)
    meta = {"merged_from": [s.name for s in states], "weights": weights}
    return AdapterState(name, first.config, merged, meta)


def flat_vector(state: AdapterState, *, invertible: bool = True) -> torch.Tensor:
    """All of an adapter's parameters as one float64 vector (sorted tensor names)."""
    keys = sorted(k for k in state.tensors if invertible or not k.startswith("invertible."))
    return torch.cat([state.tensors[k].double().reshape(-1) for k in keys])


def weight_similarity(a: AdapterState, b: AdapterState) -> dict[str, float]:
    """Cosine distance (1 - cos) and L2 distance between two adapters' flattened parameters
    (neg_inf's ``scripts/test.py`` adapter similarity)."""
    if a.config != b.config or set(a.tensors) != set(b.tensors):
        raise ConfigError(f"adapters {a.name!r} and {b.name!r} have different configurations")
    x, y = flat_vector(a), flat_vector(b)
    cos = float(torch.dot(x, y) / (torch.linalg.norm(x) * torch.linalg.norm(y)))
    return {"cosine_distance": 1.0 - cos, "l2_distance": float(torch.linalg.norm(x - y))}


# --------------------------------------------------------------------------- LoRA (peft)

def lora_weighted_adapter(peft_model, adapters, weights, name: str, *,
                          combination_type: str = "cat") -> str:
    """Weighted combination of LoRA adapters of a peft model, as a new adapter ``name``.

    ``cat`` concatenates the low-rank factors (rank grows), which is exactly
    ``sum_i w_i * scale_i * B_i A_i``; peft's ``linear`` averages A and B separately, which is not
    (its B·A has cross terms), so it is refused here unless asked for by name for comparison.
    """
    if combination_type not in ("cat", "linear"):
        raise ConfigError(f"LoRA arithmetic uses combination_type 'cat' (exact weighted sum of "
                          f"updates); got {combination_type!r}")
    peft_model.add_weighted_adapter(list(adapters), [float(w) for w in weights], name,
                                    combination_type=combination_type)
    return name


def lora_delta(peft_model, adapter: str) -> dict[str, torch.Tensor]:
    """The weight update ``scale * B @ A`` of every LoRA layer of ``adapter``."""
    out = {}
    for module_name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and adapter in getattr(module, "lora_A", {}):
            a = module.lora_A[adapter].weight
            b = module.lora_B[adapter].weight
            out[module_name] = (module.scaling[adapter] * (b @ a)).detach().double()
    return out
