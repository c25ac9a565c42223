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

Importing this module imports torch.
"""
from __future__ import annotations

import json
import math
import re
import types
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from .._io import atomic_write_text, make_temp_dir
from ..errors import ConfigError, InputError

__all__ = [
    "AdapterConfig", "Stack", "Average", "Fuse", "AdapterState", "add_adapter", "set_active",
    "adapter_state", "load_adapter_state", "merge_adapters", "save_adapter", "read_adapter",
    "adapter_names", "remove_adapter", "flat_vector", "weight_similarity", "lora_weighted_adapter",
    "ACTIVATIONS",
]

WEIGHTS_NAME = "pytorch_adapter.bin"
CONFIG_NAME = "adapter_config.json"
HEAD_NAME = "pytorch_model_head.bin"


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


@dataclass
class AdapterState:
    """One adapter's weights under names relative to the model, with its configuration.

    ``tensors`` keys: ``layer.<i>.<param>`` for the bottleneck of layer ``i`` (``adapter_down.0.weight``
    ...), ``invertible.<param>`` for the NICE block (``F.0.weight`` ...).
    """

    name: str
    config: AdapterConfig
    tensors: dict[str, torch.Tensor]
    meta: dict = field(default_factory=dict)


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


# --------------------------------------------------------------------------- files

def _hub_config(state: AdapterState, model_type: str | None, hidden: int | None) -> dict:
    c = state.config
    config = {
        "architecture": "bottleneck", "mh_adapter": False, "output_adapter": True,
        "reduction_factor": c.reduction_factor, "non_linearity": c.non_linearity,
        "original_ln_before": True, "original_ln_after": True, "residual_before_ln": True,
        "ln_before": False, "ln_after": False, "adapter_residual_before_ln": False,
        "init_weights": c.init_weights, "inv_adapter": c.inv_adapter,
        "inv_adapter_reduction_factor": c.inv_adapter_reduction_factor if c.inv_adapter else None,
    }
    return {"config": config, "hidden_size": hidden, "model_type": model_type, "name": state.name,
            "version": "xltstats", "xltstats": state.meta}


def save_adapter(state: AdapterState, folder, *, prefix: str = "bert", model_type: str | None = None,
                 head: dict | None = None) -> Path:
    """Write ``state`` in AdapterHub's layout (``adapter_config.json`` + ``pytorch_adapter.bin``),
    atomically (a temporary folder renamed into place); ``head``: extra tensors (a task head)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(folder.name + ".tmp", folder.parent)
    hidden = None
    tensors = {}
    for key, value in state.tensors.items():
        if key.startswith("invertible."):
            tensors[f"{prefix}.invertible_adapters.{state.name}.{key[len('invertible.'):]}"] = value
        else:
            _, layer, rest = key.split(".", 2)
            tensors[f"{prefix}.encoder.layer.{layer}.output.adapters.{state.name}.{rest}"] = value
            if rest == "adapter_up.weight":
                hidden = int(value.shape[0])
    torch.save(tensors, tmp / WEIGHTS_NAME)
    (tmp / CONFIG_NAME).write_text(json.dumps(_hub_config(state, model_type or prefix, hidden),
                                              indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if head is not None:
        torch.save(head, tmp / HEAD_NAME)
    (tmp / "COMPLETE").write_text("ok\n")
    from .train import _replace_dir

    _replace_dir(tmp, folder)
    return folder


_LAYER_KEY = re.compile(
    r"(?:^|\.)(?:encoder\.layer|encoder\.block|decoder\.block|layer)\.(\d+)\."
    r"(?:output|layer\.\d+)\.adapters\.(?P<name>[^.]+)\.(?P<rest>.+)$")
_INV_KEY = re.compile(r"(?:^|\.)invertible_adapters\.(?P<name>[^.]+)\.(?P<rest>.+)$")


def read_adapter(folder, *, name: str | None = None) -> AdapterState:
    """Read an adapter folder: one written by :func:`save_adapter`, or an AdapterHub / MAD-X
    checkpoint (``adapter_config.json`` and ``pytorch_adapter.bin`` or ``*.safetensors``).

    Only the Pfeiffer bottleneck (``output_adapter`` only, the original LayerNorm before and
    after, residual before it) with an optional NICE invertible adapter is supported; anything else
    is refused, naming the file and the field.
    """
    folder = Path(folder)
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise InputError(f"no {CONFIG_NAME} in the adapter folder", file=folder)
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"not valid JSON ({error})", file=config_path) from None
    raw = meta.get("config") if isinstance(meta, dict) else None
    if not isinstance(raw, dict):
        raise InputError("expected an object with a 'config' object (AdapterHub layout)",
                         file=config_path, column="config")
    config = _config_from_hub(raw, config_path)
    tensors = _read_weights(folder)
    adapter_name = name or meta.get("name")
    layer_tensors: dict[str, torch.Tensor] = {}
    names = set()
    for key, value in tensors.items():
        match = _LAYER_KEY.search(key)
        if match:
            names.add(match.group("name"))
            layer = int(match.group(1))
            layer_tensors[(match.group("name"), f"layer.{layer}.{match.group('rest')}")] = value
            continue
        match = _INV_KEY.search(key)
        if match:
            names.add(match.group("name"))
            layer_tensors[(match.group("name"), f"invertible.{match.group('rest')}")] = value
            continue
        raise InputError(f"unexpected tensor {key!r} (not a bottleneck or invertible adapter "
                         f"weight)", file=folder / WEIGHTS_NAME)
    if len(names) != 1:
        raise InputError(f"expected the weights of one adapter, found {sorted(names) or 'none'}",
                         file=folder / WEIGHTS_NAME)
    stored = names.pop()
    state = {key: value for (n, key), value in layer_tensors.items()}
    has_inv = any(k.startswith("invertible.") for k in state)
    if has_inv != bool(config.inv_adapter):
        raise InputError(f"config says inv_adapter={config.inv_adapter!r} but the weights "
                         f"{'have' if has_inv else 'have no'} invertible adapter",
                         file=config_path, column="config.inv_adapter")
    expected = {"adapter_down.0.weight", "adapter_down.0.bias", "adapter_up.weight", "adapter_up.bias"}
    layers = sorted({int(k.split(".")[1]) for k in state if k.startswith("layer.")})
    if layers != list(range(len(layers))):
        raise InputError(f"adapter layers are not 0..n-1: {layers}", file=folder / WEIGHTS_NAME)
    for layer in layers:
        got = {k.split(".", 2)[2] for k in state if k.startswith(f"layer.{layer}.")}
        if got != expected:
            raise InputError(f"layer {layer}: tensors {sorted(got)}, expected {sorted(expected)}",
                             file=folder / WEIGHTS_NAME)
    return AdapterState(adapter_name or stored, config, state,
                        {"source": str(folder), "stored_name": stored,
                         "model_name": meta.get("model_name"), "model_type": meta.get("model_type")})


def _config_from_hub(raw: dict, path: Path) -> AdapterConfig:
    def need(key, wanted, default):
        value = raw.get(key, default)
        if value != wanted:
            raise InputError(f"{key}={value!r} is not supported (the Pfeiffer bottleneck needs "
                             f"{key}={wanted!r})", file=path, column=f"config.{key}")

    need("mh_adapter", False, False)
    need("output_adapter", True, True)
    need("original_ln_before", True, True)
    need("original_ln_after", True, True)
    need("residual_before_ln", True, True)
    need("ln_before", False, False)
    need("ln_after", False, False)
    arch = raw.get("architecture", "bottleneck")
    if arch not in (None, "bottleneck"):
        raise InputError(f"architecture {arch!r} is not a bottleneck adapter", file=path,
                         column="config.architecture")
    reduction = raw.get("reduction_factor", 16)
    if isinstance(reduction, dict):
        values = set(reduction.values())
        if len(values) != 1:
            raise InputError(f"per-layer reduction factors {reduction} are not supported", file=path,
                             column="config.reduction_factor")
        reduction = values.pop()
    mapping = {
        "reduction_factor": reduction,
        "non_linearity": str(raw.get("non_linearity", "relu")).lower(),
        "inv_adapter": raw.get("inv_adapter"),
        "inv_adapter_reduction_factor": raw.get("inv_adapter_reduction_factor") or 2,
        "init_weights": raw.get("init_weights", "bert"),
    }
    try:
        return AdapterConfig(**mapping)
    except ConfigError as error:
        raise InputError(str(error), file=path, column="config") from None


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    binary = folder / WEIGHTS_NAME
    safes = sorted(folder.glob("*.safetensors"))
    if binary.is_file():
        try:
            data = torch.load(binary, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unpickling problem is a bad file
            raise InputError(f"cannot read the weights ({type(error).__name__}: {error})",
                             file=binary) from None
    elif safes:
        from safetensors.torch import load_file

        data = load_file(str(safes[0]))
    else:
        raise InputError(f"no {WEIGHTS_NAME} or .safetensors weights in the adapter folder",
                         file=folder)
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise InputError("weights file is not a mapping of tensor names to tensors", file=binary)
    return data


def read_head(folder) -> dict | None:
    path = Path(folder) / HEAD_NAME
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None


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


def _atomic_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True))
