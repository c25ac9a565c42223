"""The adapter layers of :mod:`.adapters` and how they are wired into a transformers model.

:class:`AdapterConfig`, the bottleneck and NICE modules (AdapterHub parameter names), the untrained
AdapterFusion layer, the compositions (:class:`Stack`, :class:`Average`, :class:`Fuse`) and the
per-model controller that replaces the forward of each feed-forward output module (BERT/XLM-R) or
T5 feed-forward block and hooks the embeddings and masked-LM head for invertible adapters.
Imports torch.
"""
from __future__ import annotations

import math
import types
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from ..errors import ConfigError


def _gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


#: AdapterHub ``non_linearity`` names -> functions.
ACTIVATIONS = {
    "relu": torch.relu,
    "gelu": nn.functional.gelu,
    "gelu_new": _gelu_new,
    "gelu_orig": nn.functional.gelu,
    "swish": nn.functional.silu,
    "silu": nn.functional.silu,
    "tanh": torch.tanh,
    "leakyrelu": nn.functional.leaky_relu,
}


class _Activation(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.fn = ACTIVATIONS[name]

    def forward(self, x):
        return self.fn(x)

    def extra_repr(self):
        return self.name


@dataclass(frozen=True)
class AdapterConfig:
    """A bottleneck adapter after the feed-forward block (Pfeiffer), optionally with NICE.

    ``reduction_factor``: hidden size / bottleneck size. ``non_linearity``: one of
    :data:`ACTIVATIONS`. ``inv_adapter``: ``None`` or ``"nice"``; ``inv_adapter_reduction_factor``:
    reduction of the NICE coupling networks. ``init_weights="bert"``: N(0, 0.02) weights, zero biases.
    """

    reduction_factor: float = 16
    non_linearity: str = "relu"
    inv_adapter: str | None = None
    inv_adapter_reduction_factor: float = 2
    init_weights: str = "bert"

    def __post_init__(self):
        if self.non_linearity not in ACTIVATIONS:
            raise ConfigError(f"unknown adapter non_linearity {self.non_linearity!r}; known: "
                              f"{', '.join(ACTIVATIONS)}")
        if self.inv_adapter not in (None, "nice"):
            raise ConfigError(f"unknown inv_adapter {self.inv_adapter!r}; known: nice (or none)")
        for name in ("reduction_factor", "inv_adapter_reduction_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"adapter {name} must be a positive number, got {value!r}")
        if self.init_weights not in ("bert", "mam_adapter"):
            raise ConfigError(f"unknown init_weights {self.init_weights!r}; known: bert, mam_adapter")

    @classmethod
    def from_dict(cls, mapping: dict, *, where: str = "adapter") -> "AdapterConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(mapping) - known
        if unknown:
            raise ConfigError(f"{where}: unknown adapter field {sorted(unknown)[0]!r}; known: "
                              f"{', '.join(sorted(known))}")
        try:
            return cls(**mapping)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- modules

class Bottleneck(nn.Module):
    """``adapter_up(act(adapter_down(h)))``: the update added to ``h`` (AdapterHub names)."""

    def __init__(self, hidden: int, config: AdapterConfig):
        super().__init__()
        size = max(1, int(hidden // config.reduction_factor))
        self.adapter_down = nn.Sequential(nn.Linear(hidden, size), _Activation(config.non_linearity))
        self.adapter_up = nn.Linear(size, hidden)

    def forward(self, h):
        return self.adapter_up(self.adapter_down(h))


class NICECoupling(nn.Module):
    """NICE additive coupling: ``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)`` (AdapterHub's F.0/F.2/G.0/G.2)."""

    def __init__(self, hidden: int, config: AdapterConfig):
        super().__init__()
        self.split = hidden // 2
        first, second = self.split, hidden - self.split
        size = max(1, int(first // config.inv_adapter_reduction_factor))
        act = config.non_linearity
        self.F = nn.Sequential(nn.Linear(second, size), _Activation(act), nn.Linear(size, first))
        self.G = nn.Sequential(nn.Linear(first, size), _Activation(act), nn.Linear(size, second))

    def forward(self, x, rev: bool = False):
        x1, x2 = x[..., :self.split], x[..., self.split:]
        if not rev:
            y1 = x1 + self.F(x2)
            y2 = x2 + self.G(y1)
        else:
            y2 = x2 - self.G(x1)
            y1 = x1 - self.F(y2)
        return torch.cat([y1, y2], dim=-1)


class FusionLayer(nn.Module):
    """AdapterFusion of one layer (AdapterHub's dynamic fusion): query and key ``N(0, 0.02)``,
    value initialised to the identity; ``softmax(q(h) . k(up_i))`` weights the values of the
    adapters' updates, and the result is added to ``h``."""

    def __init__(self, hidden: int, generator: torch.Generator):
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        with torch.no_grad():
            for linear in (self.query, self.key):
                linear.weight.copy_(torch.randn(linear.weight.shape, generator=generator) * 0.02)
                linear.bias.zero_()
            self.value.weight.copy_(torch.full((hidden, hidden), 1e-6).fill_diagonal_(1.0))
            self.value.bias.zero_()

    def forward(self, h, updates):  # updates: (..., n_adapters, hidden)
        q = self.query(h).unsqueeze(-2)
        k = self.key(updates)
        v = self.value(updates)
        probs = torch.softmax((q * k).sum(-1), dim=-1).unsqueeze(-1)
        return h + (probs * v).sum(-2)


# --------------------------------------------------------------------------- compositions

@dataclass(frozen=True)
class Average:
    """Output averaging: each adapter applied to the same input, outputs averaged with ``weights``."""

    names: tuple[str, ...]
    weights: tuple[float, ...] | None = None

    def resolved_weights(self) -> tuple[float, ...]:
        return self.weights or tuple(1.0 / len(self.names) for _ in self.names)


@dataclass(frozen=True)
class Fuse:
    """An untrained AdapterFusion over ``names`` whose query/key come from ``seed``."""

    names: tuple[str, ...]
    seed: int = 0


@dataclass(frozen=True)
class Stack:
    """Blocks applied one after another (a block is an adapter name, an Average or a Fuse)."""

    blocks: tuple = ()

    def __init__(self, *blocks):
        object.__setattr__(self, "blocks", tuple(blocks))


_OUTPUT_CLASSES = {"BertOutput", "RobertaOutput", "XLMRobertaOutput", "CamembertOutput",
                   "ElectraOutput", "XLMRobertaXLOutput"}
_T5_FF_CLASSES = {"T5LayerFF", "MT5LayerFF", "UMT5LayerFF"}


class _Controller:
    """Per-model bookkeeping: adapter configs, the active composition, fusion layers."""

    def __init__(self, base, hidden: int, kind: str):
        self.base = base
        self.hidden = hidden
        self.kind = kind  # "encoder" (BERT-style output) or "t5"
        self.configs: dict[str, AdapterConfig] = {}
        self.active: Stack | None = None
        self.layers: list[nn.Module] = []


def _controller(model) -> _Controller:
    base = getattr(model, "base_model", model)
    ctl = getattr(base, "_xlt_adapters", None)
    if ctl is not None:
        return ctl
    config = base.config
    layers = [m for m in base.modules() if type(m).__name__ in _OUTPUT_CLASSES]
    kind = "encoder"
    if not layers:
        layers = [m for m in base.modules() if type(m).__name__ in _T5_FF_CLASSES]
        kind = "t5"
    if not layers:
        raise ConfigError(f"adapters need a BERT/XLM-R encoder or a T5/mT5 model; "
                          f"{type(base).__name__} has no feed-forward output module this code knows")
    hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model")
    ctl = _Controller(base, hidden, kind)
    ctl.layers = layers
    for module in layers:
        module.adapters = nn.ModuleDict()
        module.adapter_fusion_layer = nn.ModuleDict()
        module.forward = types.MethodType(_t5_forward if kind == "t5" else _encoder_forward, module)
        module._xlt_controller = ctl
    base.invertible_adapters = nn.ModuleDict()
    if kind == "encoder":
        base.embeddings.register_forward_hook(_embedding_hook)
        base.embeddings._xlt_controller = ctl
        head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
        if head is not None and model is not base:
            head.register_forward_pre_hook(_head_pre_hook)
            head._xlt_controller = ctl
    object.__setattr__(base, "_xlt_adapters", ctl)  # not a submodule
    return ctl


def _apply_blocks(module, ctl: _Controller, h):
    for block in ctl.active.blocks:
        if isinstance(block, str):
            h = h + module.adapters[block](h)
        elif isinstance(block, Average):
            weights = block.resolved_weights()
            h = sum(w * (h + module.adapters[name](h)) for name, w in zip(block.names, weights))
        else:
            updates = torch.stack([module.adapters[name](h) for name in block.names], dim=-2)
            h = module.adapter_fusion_layer[_fusion_key(block)](h, updates)
    return h


def _encoder_forward(self, hidden_states, input_tensor):
    hidden_states = self.dropout(self.dense(hidden_states))
    ctl = self._xlt_controller
    hidden_states = self.LayerNorm(hidden_states + input_tensor)
    if ctl.active is None:
        return hidden_states
    hidden_states = _apply_blocks(self, ctl, hidden_states)
    return self.LayerNorm(hidden_states + input_tensor)


def _t5_forward(self, hidden_states):
    ctl = self._xlt_controller
    forwarded = self.dropout(self.DenseReluDense(self.layer_norm(hidden_states)))
    if ctl.active is not None:
        forwarded = _apply_blocks(self, ctl, forwarded)
    return hidden_states + forwarded


def _invertible(ctl: _Controller):
    """The invertible adapters in use: those of the first block that has any (AdapterHub: the
    first adapter of a stack); for an Average, the weighted average of their outputs."""
    if ctl.active is None:
        return None
    inv = ctl.base.invertible_adapters
    for block in ctl.active.blocks:
        names = (block,) if isinstance(block, str) else block.names
        present = [n for n in names if n in inv]
        if not present:
            continue
        if isinstance(block, Average):
            weights = dict(zip(block.names, block.resolved_weights()))
            return [(inv[n], weights[n]) for n in present]
        return [(inv[present[0]], 1.0)]
    return None


def _embedding_hook(module, args, output):
    parts = _invertible(module._xlt_controller)
    if not parts:
        return output
    return sum(w * m(output) for m, w in parts)


def _head_pre_hook(module, args):
    parts = _invertible(module._xlt_controller)
    if not parts:
        return None
    if len(parts) > 1:
        raise ConfigError("the inverse of an averaged invertible adapter is not defined; "
                          "merge the adapters (parameter average) to train or score masked LM")
    return (parts[0][0](args[0], rev=True),) + tuple(args[1:])


def _fusion_key(block: Fuse) -> str:
    return "fuse_" + "_".join(block.names) + f"_seed{block.seed}"
