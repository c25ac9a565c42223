"""Hidden-state dumps: mean-pooled sentence representations of every layer, as plain arrays.

Layout of a dump folder (written by the runner's ``representations`` job, readable by anyone)::

    manifest.json                 model, layer convention, pooling, and one entry per
                                  (checkpoint, language): file, n_sentences, n_layers, dim, sha256
    <checkpoint>/<language>.npz   ``hidden``: float32 (n_layers + 1, n_sentences, dim);
                                  ``sentence_index``: int64 (n_sentences,) positions in the corpus

Layer 0 is the embedding output; layer i is the output of encoder block i - 1 (so re-initialising
block 0 changes layers 1 and above, never layer 0).  Arrays are ``.npz`` without pickled objects
(``np.load(..., allow_pickle=False)`` reads them).  Each entry is written atomically and the
manifest is rewritten after each one, so a killed dump resumes at the first missing entry.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..._io import atomic_write_bytes
from ...errors import InputError

MANIFEST = "manifest.json"
LAYER_CONVENTION = "layer 0 = embedding output; layer i = output of encoder block i-1"


def read_manifest(folder) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=path) from None


def write_entry(folder, *, checkpoint: str, language: str, hidden: np.ndarray, sentence_index,
                meta: dict, info: dict | None = None) -> dict:
    """Save one (checkpoint, language) array and record it in the manifest (both atomically)."""
    import io

    folder = Path(folder)
    hidden = np.ascontiguousarray(hidden, dtype=np.float32)
    sentence_index = np.asarray(sentence_index, dtype=np.int64)
    if hidden.ndim != 3 or hidden.shape[1] != sentence_index.shape[0]:
        raise ValueError(f"hidden must be (layers, sentences, dim) with {sentence_index.shape[0]} sentences; "
                         f"got {hidden.shape}")
    buffer = io.BytesIO()
    np.savez(buffer, hidden=hidden, sentence_index=sentence_index)
    data = buffer.getvalue()
    rel = f"{checkpoint}/{language}.npz"
    atomic_write_bytes(folder / rel, data)
    manifest = read_manifest(folder) or {"format": "xltstats-hidden-states/1",
                                         "layer_convention": LAYER_CONVENTION, "entries": []}
    manifest.update({k: v for k, v in meta.items() if k != "entries"})
    entry = {"checkpoint": checkpoint, "language": language, "file": rel,
             "n_sentences": int(hidden.shape[1]), "n_layers": int(hidden.shape[0] - 1),
             "dim": int(hidden.shape[2]), "sha256": hashlib.sha256(data).hexdigest(), **(info or {})}
    entries = [e for e in manifest["entries"] if (e["checkpoint"], e["language"]) != (checkpoint, language)]
    entries.append(entry)
    manifest["entries"] = sorted(entries, key=lambda e: (e["checkpoint"], e["language"]))
    atomic_write_bytes(folder / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return entry


def done_entries(folder) -> set[tuple[str, str]]:
    """(checkpoint, language) entries whose file exists with the recorded checksum size."""
    folder = Path(folder)
    out = set()
    for e in read_manifest(folder).get("entries", []):
        if (folder / e["file"]).is_file():
            out.add((e["checkpoint"], e["language"]))
    return out


@dataclass
class Dump:
    """A read, checked dump folder: ``hidden(checkpoint, language)`` -> (layers, n, dim) float32."""

    folder: Path
    manifest: dict

    @property
    def checkpoints(self) -> list[str]:
        return sorted({e["checkpoint"] for e in self.manifest["entries"]})

    def languages(self, checkpoint: str) -> list[str]:
        return sorted(e["language"] for e in self.manifest["entries"] if e["checkpoint"] == checkpoint)

    def entry(self, checkpoint: str, language: str) -> dict:
        for e in self.manifest["entries"]:
            if e["checkpoint"] == checkpoint and e["language"] == language:
                return e
        raise InputError(f"no hidden states for checkpoint {checkpoint!r}, language {language!r}",
                         file=self.folder / MANIFEST)

    def hidden(self, checkpoint: str, language: str) -> np.ndarray:
        return self._load(self.entry(checkpoint, language))["hidden"]

    def sentence_index(self, checkpoint: str, language: str) -> np.ndarray:
        return self._load(self.entry(checkpoint, language))["sentence_index"]

    def _load(self, e: dict) -> dict:
        path = self.folder / e["file"]
        if not path.is_file():
            raise InputError("listed in the manifest but missing", file=path)
        with np.load(path, allow_pickle=False) as z:
            if "hidden" not in z.files or "sentence_index" not in z.files:
                raise InputError("needs arrays 'hidden' and 'sentence_index'", file=path)
            out = {"hidden": z["hidden"], "sentence_index": z["sentence_index"]}
        h = out["hidden"]
        if h.ndim != 3 or h.shape[1] != e["n_sentences"] or h.shape[0] != e["n_layers"] + 1:
            raise InputError(f"array 'hidden' has shape {h.shape}; the manifest says "
                             f"({e['n_layers'] + 1}, {e['n_sentences']}, {e['dim']})", file=path)
        return out


def read_dump(folder) -> Dump:
    """Read a dump folder and check it before any computation.

    Every language of a checkpoint must hold the same sentences (same count and the same
    ``sentence_index``: CKA pairs item i of one language with item i of the other), and every
    entry of a checkpoint the same number of layers.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if not manifest:
        raise InputError("no manifest.json: not a hidden-state dump folder", file=folder)
    entries = manifest.get("entries")
    if not isinstance(entries, list) or not entries:
        raise InputError("field 'entries' is missing or empty", file=folder / MANIFEST)
    for i, e in enumerate(entries):
        for key in ("checkpoint", "language", "file", "n_sentences", "n_layers", "dim"):
            if key not in e:
                raise InputError(f"field 'entries[{i}].{key}' is missing", file=folder / MANIFEST)
    dump = Dump(folder, manifest)
    for ckpt in dump.checkpoints:
        mine = [e for e in entries if e["checkpoint"] == ckpt]
        counts = {e["language"]: e["n_sentences"] for e in mine}
        if len(set(counts.values())) > 1:
            raise InputError(f"checkpoint {ckpt!r}: languages have different numbers of sentences "
                             f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}); parallel "
                             "sentences are needed", file=folder / MANIFEST, column="n_sentences")
        layers = {e["language"]: e["n_layers"] for e in mine}
        if len(set(layers.values())) > 1:
            raise InputError(f"checkpoint {ckpt!r}: languages have different numbers of layers "
                             f"({', '.join(f'{k} {v}' for k, v in sorted(layers.items()))})",
                             file=folder / MANIFEST, column="n_layers")
        first = None
        for e in mine:
            idx = dump._load(e)["sentence_index"]
            if first is None:
                first = (e["language"], idx)
            elif not np.array_equal(idx, first[1]):
                raise InputError(f"checkpoint {ckpt!r}: {e['language']} and {first[0]} hold different "
                                 "sentences (sentence_index differs)", file=folder / e["file"],
                                 column="sentence_index")
    return dump
