"""lme4-style mixed-model formulas: parsing and model matrices.

A formula such as ``score ~ syntactic_distance + (1|source) + (1 + x|target)`` is split into a
fixed part, handed to patsy (``score ~ syntactic_distance``), and random-effect terms
``(expr | group)`` that are parsed here.  Each random term becomes a :class:`RandomTerm` with its
own small model matrix (patsy evaluates ``expr``) and the integer level codes of ``group``.

Conventions follow lme4:

* ``(1 | g)`` random intercept; ``(x | g)`` and ``(1 + x | g)`` correlated intercept and slope;
  ``(0 + x | g)`` / ``(-1 + x | g)`` slope only; ``(1 | g) + (0 + x | g)`` uncorrelated.
* ``(1 | a:b)`` groups by the combination of ``a`` and ``b``; ``(1 | a/b)`` expands to
  ``(1 | a) + (1 | a:b)``.
* The double-bar ``||`` form (uncorrelated terms) is expanded into one term per column.
"""
from __future__ import annotations

import io
import keyword
import re
import tokenize
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xltstats.errors import ConfigError, InputError

# Names that may appear in a formula without being a data column (patsy builtins, numpy).
_FORMULA_BUILTINS = {
    "C", "I", "Q", "np", "numpy", "log", "exp", "sqrt", "center", "standardize", "scale",
    "Treatment", "Sum", "Diff", "Helmert", "Poly", "bs", "cr", "cc", "te", "True", "False", "None",
}


@dataclass
class RandomTerm:
    """One ``(expr | group)`` term after evaluation against the data."""

    expr: str                 # the left of the bar as written, e.g. "1 + x"
    group: str                # the grouping factor as written, e.g. "source" or "source:target"
    column_names: list        # lme4 names of the term's columns, e.g. ["(Intercept)", "x"]
    matrix: np.ndarray        # n x k model matrix of the term
    codes: np.ndarray         # n integer level codes, 0 .. n_levels-1
    levels: list              # level labels (strings), position = code

    @property
    def n_columns(self) -> int:
        return self.matrix.shape[1]

    @property
    def n_levels(self) -> int:
        return len(self.levels)


@dataclass
class ParsedFormula:
    """A formula split into its fixed part and its random terms (still unevaluated)."""

    formula: str
    response: str
    fixed_rhs: str
    random: list = field(default_factory=list)   # list of (expr, group) strings

    @property
    def fixed_formula(self) -> str:
        return f"{self.response} ~ {self.fixed_rhs}"


def _split_top_level_plus(text: str) -> list[str]:
    """Split ``text`` at ``+`` and ``-`` signs that are outside parentheses, keeping the signs."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"unbalanced ')' in formula right-hand side {text!r}")
        elif ch in "+-" and depth == 0 and i > 0:
            parts.append(text[start:i])
            start = i
    if depth != 0:
        raise ConfigError(f"unbalanced '(' in formula right-hand side {text!r}")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip() not in ("", "+")]


_BAR = re.compile(r"^\(\s*(.*?)\s*(\|\|?)\s*([^|]+?)\s*\)$", re.S)


def parse_formula(formula: str) -> ParsedFormula:
    """Split an lme4-style formula into response, fixed right-hand side and random terms."""
    if not isinstance(formula, str) or "~" not in formula:
        raise ConfigError(f"a mixed-model formula needs the form 'y ~ terms', got {formula!r}")
    lhs, rhs = formula.split("~", 1)
    response = lhs.strip()
    if not response:
        raise ConfigError(f"formula {formula!r} has no response on the left of '~'")
    fixed, random = [], []
    for part in _split_top_level_plus(rhs.strip()):
        sign = ""
        body = part
        if body[0] in "+-":
            sign, body = body[0], body[1:].strip()
        match = _BAR.match(body)
        if match and "|" in body:
            if sign == "-":
                raise ConfigError(f"cannot subtract a random term: {part!r} in {formula!r}")
            expr, bar, group = match.group(1).strip(), match.group(2), match.group(3).strip()
            if not expr:
                raise ConfigError(f"random term {body!r} has nothing left of '|' in {formula!r}")
            groups = _expand_nesting(group)
            if bar == "||":
                for sub_expr in _uncorrelated_parts(expr):
                    random.extend((sub_expr, g) for g in groups)
            else:
                random.extend((expr, g) for g in groups)
        else:
            if "|" in body:
                raise ConfigError(
                    f"random term {part!r} in {formula!r} must be written in parentheses, e.g. (1 | source)")
            fixed.append(("- " if sign == "-" else "+ ") + body)
    fixed_rhs = " ".join(fixed).strip()
    if fixed_rhs.startswith("+ "):
        fixed_rhs = fixed_rhs[2:]
    if not fixed_rhs:
        fixed_rhs = "1"
    elif fixed_rhs.startswith("- "):
        fixed_rhs = "1 " + fixed_rhs
    if not random:
        raise ConfigError(
            f"formula {formula!r} has no random-effect term such as (1 | source); use fit_ols for a "
            "model without random effects")
    return ParsedFormula(formula=formula, response=response, fixed_rhs=fixed_rhs, random=random)


def _expand_nesting(group: str) -> list[str]:
    """``a/b`` -> ``[a, a:b]``; anything else is returned as it is."""
    if "/" not in group:
        return [group]
    pieces = [p.strip() for p in group.split("/")]
    return [":".join(pieces[: i + 1]) for i in range(len(pieces))]


def _uncorrelated_parts(expr: str) -> list[str]:
    """Expand the left side of ``(expr || g)`` into one single-column expression per column."""
    parts = [p.strip() for p in _split_top_level_plus(expr)]
    intercept = True
    variables = []
    for p in parts:
        q = p.lstrip("+").strip()
        if q in ("0", "-1", "- 1") or p.replace(" ", "") in ("-1",):
            intercept = False
        elif q == "1":
            intercept = True
        else:
            variables.append(q)
    out = ["1"] if intercept else []
    out.extend(f"0 + {v}" for v in variables)
    return out


def referenced_columns(formula: str, data: pd.DataFrame) -> list[str]:
    """Data columns that ``formula`` uses; raises :class:`InputError` naming an unknown column.

    A name counts as a column reference unless it is called like a function (``log(x)``) or is a
    patsy/numpy builtin.  Column names that are not Python identifiers can be written as
    ``Q("my column")``; those are found too.
    """
    columns = set(map(str, data.columns))
    used: list[str] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(formula).readline))
    except (tokenize.TokenError, SyntaxError) as exc:  # pragma: no cover - unbalanced quotes
        raise ConfigError(f"cannot read formula {formula!r}: {exc}") from None
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.STRING and i >= 2 and tokens[i - 2].string == "Q":
            name = tok.string[1:-1]
            if name not in columns:
                raise InputError(f"formula {formula!r} uses unknown column {name!r}", column=name)
            used.append(name)
        if tok.type != tokenize.NAME or keyword.iskeyword(tok.string):
            continue
        following = tokens[i + 1].string if i + 1 < len(tokens) else ""
        previous = tokens[i - 1].string if i > 0 else ""
        if following == "(" or previous == ".":
            continue
        name = tok.string
        if name in columns:
            used.append(name)
        elif name not in _FORMULA_BUILTINS:
            raise InputError(
                f"formula {formula!r} uses unknown column {name!r}; the data has columns "
                f"{sorted(columns)}", column=name)
    return list(dict.fromkeys(used))


def _lme4_name(patsy_name: str) -> str:
    return "(Intercept)" if patsy_name == "Intercept" else patsy_name


def build_random_terms(parsed: ParsedFormula, data: pd.DataFrame) -> list[RandomTerm]:
    """Evaluate each random term's model matrix and grouping codes on ``data``."""
    import patsy

    terms = []
    for expr, group in parsed.random:
        try:
            design = patsy.dmatrix(expr, data, return_type="dataframe", NA_action="raise")
        except patsy.PatsyError as exc:
            raise ConfigError(f"cannot evaluate random term ({expr} | {group}): {exc}") from None
        names = [_lme4_name(c) for c in design.columns]
        if not names:
            raise ConfigError(f"random term ({expr} | {group}) has no columns")
        group_columns = [g.strip() for g in group.split(":")]
        for g in group_columns:
            if g not in data.columns:
                raise InputError(f"grouping factor {g!r} of ({expr} | {group}) is not a column of the data",
                                 column=g)
        if len(group_columns) == 1:
            labels = data[group_columns[0]].astype(str)
        else:
            labels = data[group_columns[0]].astype(str)
            for g in group_columns[1:]:
                labels = labels + ":" + data[g].astype(str)
        codes, levels = pd.factorize(labels.to_numpy(), sort=True)
        terms.append(RandomTerm(expr=expr, group=group, column_names=names,
                                matrix=np.asarray(design, dtype=float), codes=codes.astype(np.int64),
                                levels=[str(v) for v in levels]))
    return terms
