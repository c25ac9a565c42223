"""Language arithmetic (Klimaszewski, Andruszkiewicz & Birch, COLING 2025).

:mod:`.analysis` (lambda curves with bands, validation-only selection, gains with a paired
bootstrap), :mod:`.loaders` (``*_results.json`` of ``mklimasz/language-arithmetic``), :mod:`.report`,
and the CLI ``python -m xltstats.studies.arithmetic``.  The merge itself is
:func:`xltstats.experiments.adapters.merge_adapters`.
"""
from .analysis import curves, gains, select, sweep_rows
from .loaders import read_la_results

__all__ = ["curves", "gains", "select", "sweep_rows", "read_la_results"]
