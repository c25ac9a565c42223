"""Adapter weights in memory (:class:`AdapterState`) and on disk, in AdapterHub's layout.

:func:`save_adapter` writes ``adapter_config.json`` + ``pytorch_adapter.bin`` (and a task head)
under AdapterHub's tensor names; :func:`read_adapter` reads such a folder, from this module or an
AdapterHub / MAD-X checkpoint (``.bin`` or ``.safetensors``), refusing any other architecture with
the file and field named.  Imports torch.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ConfigError, InputError
from ._adapter_modules import AdapterConfig

WEIGHTS_NAME = "pytorch_adapter.bin"
CONFIG_NAME = "adapter_config.json"
HEAD_NAME = "pytorch_model_head.bin"


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
    atomically (:func:`.train.write_checkpoint`); ``head``: extra tensors (a task head)."""
    from .train import write_checkpoint

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
    config = json.dumps(_hub_config(state, model_type or prefix, hidden), indent=2, sort_keys=True) + "\n"

    def write(tmp: Path) -> None:
        torch.save(tensors, tmp / WEIGHTS_NAME)
        (tmp / CONFIG_NAME).write_text(config, encoding="utf-8")
        if head is not None:
            torch.save(head, tmp / HEAD_NAME)

    return write_checkpoint(folder, write)


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
