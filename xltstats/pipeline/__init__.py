"""The analysis pipeline as a library: configuration, model table, run, fit folder, provenance.

    from xltstats.pipeline import FitConfig, run_fit
    fit = run_fit(FitConfig(data="langrank-pos"))      # everything in memory
    fit.ols.summary(); fit.tables["coef_mixed"]
    FitFolder("fits/pos").write(fit)                    # the folder python -m xltstats.fit writes

Modules: :mod:`.config` (``FitConfig``), :mod:`.design` (``model_table``), :mod:`.run`
(``run_fit`` -> ``Fit``), :mod:`.artifacts` (``FitFolder``), :mod:`.manifest` (provenance).
"""
from __future__ import annotations

_EXPORTS = {
    "FitConfig": "config", "load_config": "config", "ModelTable": "design", "model_table": "design",
    "prediction_table": "design", "Fit": "run", "run_fit": "run", "FitFolder": "artifacts",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    # lazily, so that `python -m xltstats.fit` can answer Ctrl-C during start-up without a traceback
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
