"""The analysis pipeline as a library: configuration, model table, run, fit folder, provenance.

    from xltstats.pipeline import FitConfig, run_fit
    fit = run_fit(FitConfig(data="langrank-pos"))      # everything in memory
    fit.ols.summary(); fit.tables["coef_mixed"]
    FitFolder("fits/pos").write(fit)                    # the folder python -m xltstats.fit writes

Modules: :mod:`.config` (``FitConfig``), :mod:`.design` (``model_table``), :mod:`.run`
(``run_fit`` -> ``Fit``), :mod:`.artifacts` (``FitFolder``), :mod:`.manifest` (provenance).
"""
from __future__ import annotations

from .artifacts import FitFolder
from .config import FitConfig, load_config
from .design import ModelTable, model_table, prediction_table
from .run import Fit, run_fit

__all__ = ["FitConfig", "load_config", "ModelTable", "model_table", "prediction_table", "Fit", "run_fit",
           "FitFolder"]
