"""The results table: one row per model, task, source, target, n_target_examples and seed.

Schema (long format)::

    model, task, source, target, score, metric, n_source_examples, n_target_examples, seed

plus any extra columns, which are kept.  :func:`validate_results` turns ``source``/``target`` into
ISO 639-3 codes (keeping what was given in ``source_code``/``target_code``), coerces ``score`` to
float and the counts and seed to integers (``n_source_examples`` may be unknown: nullable Int64).
An empty ``score`` marks a row to predict: a fit leaves it out of every model and cross-validation
and predicts it in ``predictions.csv``.
Multi-source runs have ``source == "mul"`` and a ``source_languages`` column holding a JSON object
``{"deu": 500, "eng": 1000}`` (ISO 639-3 -> training examples, sorted keys).

Experimental conditions
-----------------------
Rows that differ only by an experimental condition (adapter composition, arithmetic weights, MLM
steps, re-initialised layers) carry an optional ``condition`` column, which then joins the row key
(like ``source_languages``).  Its canonical text is ``key=value`` pairs sorted by key and joined by
``;`` (``compose=stack;mlm_steps=100``, ``la=ara:0.70+eng:0.30``, ``reinit=0-1``); keys are
identifiers, values are non-empty and contain neither ``;`` nor ``=``.  A mapping (a dict, or a JSON
object in JSON lines) is accepted and written in that form.  An empty cell means "no condition".
Structured columns beside it (``lambda``, ``mlm_steps``, ``method`` ...) are kept; a column named like
a condition key must agree with it on every row where both are given.  Tables without the column
are read exactly as before.  :func:`parse_condition` / :func:`format_condition` convert.

Scores and scales
-----------------
:data:`METRICS` gives each metric's range on its native scale: proportions (accuracy, F1, EM,
LAS, UAS, nDCG, MRR) on 0-1, BLEU/chrF/spBLEU on 0-100.  Papers report both kinds on either scale,
so a metric may also come on the other one (a factor of 100 away).  The scale is decided per
(metric, task, model) group: 0-1 when every score of the group is at most 1, else 0-100.  A metric
whose groups disagree is an error (the classic mistake of concatenating a 0-1 file with a 0-100
one) unless ``rescale=True``, which puts every metric on its native scale, keeps the score as
given in ``score_original`` and records the conversions in ``df.attrs["rescaled"]``.  The scale of
each metric in the returned table is in ``df.attrs["score_scales"]``.  Known limit: a 0-100 group
in which every score is at most 1 (say BLEU of a model that never works) reads as 0-1.
Other metrics are declared in the fit config (``metrics:``, with range, direction and label) and
known to validation within :func:`xltstats.results.metrics.metric_options`; their scores are
checked against the declared range only.  What a fit's scores mean downstream (range to clip
predictions to, direction of the ranking) is :class:`xltstats.results.metrics.ScoreScale`.

Row numbers in errors are data rows as a user counts them in the file: 1-based, header not
counted, blank lines counted as the rows they are in the file; for JSON lines the line number.
"""
from __future__ import annotations

from .files import FORMATS, read_results, read_table, write_results
from .metrics import METRIC_ALIASES, METRICS
from .schema import (CONDITION, KEY_COLUMNS, MULTI_SOURCE, REQUIRED_COLUMNS, SOURCE_LANGUAGES, format_condition,
                     key_columns, parse_condition, parse_source_languages, source_languages_of)
from .validation import validate_results

# read_table, SOURCE_LANGUAGES, parse_source_languages and source_languages_of are imported from here
# by the package's own modules; the names below are the public API.
__all__ = [
    "REQUIRED_COLUMNS",
    "KEY_COLUMNS",
    "MULTI_SOURCE",
    "METRICS",
    "METRIC_ALIASES",
    "FORMATS",
    "read_results",
    "write_results",
    "validate_results",
    "CONDITION",
    "parse_condition",
    "format_condition",
    "key_columns",
]
