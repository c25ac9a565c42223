"""README's configuration reference is generated from FitConfig (xltstats.pipeline.config_docs)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from xltstats.pipeline import config_docs
from xltstats.pipeline.config import SECTIONS, FitConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_reference_is_the_generated_one():
    text = README.read_text(encoding="utf-8")
    assert config_docs.updated_readme(text) == text, (
        "README.md's configuration reference differs from FitConfig: run "
        "python -m xltstats.pipeline.config_docs --write")


def test_every_key_is_documented_with_its_default():
    reference = config_docs.reference()
    keys = [f.name for f in dataclasses.fields(FitConfig) if f.name not in SECTIONS]
    keys += [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]
    assert sorted(keys) == sorted(config_docs.config_keys())
    for key in keys:
        assert f"| `{key}` |" in reference, key
    assert "| `variant` | unset |" in reference and "`sumeval`: `train`, `test_release`, `all`" in reference
    assert "| `ols.n_boot` | `500` |" in reference and "| `pairs` | `auto` |" in reference


def test_an_undocumented_key_fails(monkeypatch):
    monkeypatch.delitem(config_docs.KEY_DOCS, "variant")
    with pytest.raises(KeyError, match="lacks \\['variant'\\]"):
        config_docs.reference()
    monkeypatch.setitem(config_docs.KEY_DOCS, "variant", "x")
    monkeypatch.setitem(config_docs.KEY_DOCS, "no_such_key", "x")
    with pytest.raises(KeyError, match="unknown \\['no_such_key'\\]"):
        config_docs.reference()


def test_a_stale_readme_is_caught():
    text = README.read_text(encoding="utf-8")
    stale = text.replace("| `seed` | `0` |", "| `seed` | `1` |")
    assert stale != text and config_docs.updated_readme(stale) == text
