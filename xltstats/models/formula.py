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
* ``(1 | mm(source, target))`` is a multi-membership factor (the syntax of brms' ``mm()``): the
  levels are the values of all the named columns together, and each row loads on the level of
  every member with weight 1 (two non-zero entries of ``Z`` per row for two members; a row whose
  members name the same level loads on it with weight 2).  brms scales the weights to sum to 1 by
  default; here they are 1 each, so a pair's random part is ``b[source] + b[target]``.  Used for
  unordered language pairs (one random effect per language, whichever column it sits in).

Formulas come from users' configuration files and patsy evaluates them as Python code, so every
formula is first checked by :func:`check_formula`, a small grammar that admits only column names,
numbers, the formula operators (``~ + - * / : ** ^ |``, parentheses) and calls of a fixed list of
transforms (``log``, ``log1p``, ``exp``, ``sqrt``, ``I()``, ``C()``, ``Q("name")``, ...).  Anything
else (attribute access beyond ``np.<transform>``, other calls, strings outside ``Q()``, subscripts,
keywords, dunder names, ...) is refused before patsy sees the text.

:func:`parse_ols_formula` reads the plain ``score ~ a + b`` formulas :func:`~xltstats.models.fit_ols` takes.
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


#: Transforms a formula may call.  ``I`` and the arithmetic inside it, ``C`` (categorical, with
#: an optional contrast name), ``Q`` (a quoted column name), patsy's stateful transforms and
#: numpy's elementwise functions.
FORMULA_FUNCTIONS = frozenset({
    "I", "C", "Q", "log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "abs", "square",
    "scale", "center", "standardize",
})
_NUMPY_FUNCTIONS = frozenset({"log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "abs",
                              "square"})
_CONTRASTS = frozenset({"Treatment", "Sum", "Diff", "Helmert", "Poly"})
_FORMULA_OPERATORS = frozenset({"~", "+", "-", "*", "/", ":", "**", "^", "|", "(", ")", ",", "."})


def formula_namespace() -> dict:
    """The only names besides data columns that a formula can see when patsy evaluates it."""
    return {"log": np.log, "log1p": np.log1p, "log2": np.log2, "log10": np.log10, "exp": np.exp,
            "expm1": np.expm1, "sqrt": np.sqrt, "abs": np.abs, "square": np.square,
            "np": _SafeNumpy(), "numpy": _SafeNumpy()}


class _SafeNumpy:
    """``np.log`` and friends for formulas, and nothing else of numpy."""

    def __getattr__(self, name):
        if name in _NUMPY_FUNCTIONS:
            return getattr(np, name)
        raise AttributeError(name)


def formula_env():
    """A patsy evaluation environment holding only :func:`formula_namespace` (not the caller's
    globals: a formula must not reach modules or builtins through the environment)."""
    import patsy

    return patsy.EvalEnvironment([formula_namespace()])


class _FormulaGrammar:
    """Recursive-descent check of a formula's tokens::

        formula := [sum] "~" sum
        sum     := ["+" | "-"] product (("+" | "-") product)*
        product := unary ((":" | "*" | "/" | "**" | "^") unary)*
        unary   := "-" unary | atom
        atom    := NUMBER | column | call | "(" sum [("|" | "||") sum] ")"
        call    := FUNCTION "(" arguments ")" | ("np" | "numpy") "." NUMPY_FUNCTION "(" sum ")"
                 | "mm" "(" column ("," column)+ ")"   (a grouping factor only)
        Q(...)  := "Q" "(" STRING ")"           C(...) := "C" "(" sum ["," CONTRAST] ")"
    """

    def __init__(self, formula: str):
        self.formula = formula
        if "\x00" in formula:
            self.fail("it contains a NUL character")
        try:
            raw = list(tokenize.generate_tokens(io.StringIO(formula).readline))
        except (tokenize.TokenError, SyntaxError, IndentationError) as exc:
            self.fail(f"it cannot be read as a formula ({exc})")
        self.tokens = []
        for tok in raw:
            if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT,
                            tokenize.DEDENT):
                continue
            if tok.type == tokenize.COMMENT:
                self.fail(f"comments ({tok.string!r}) are not allowed")
            if tok.type == tokenize.ERRORTOKEN and not tok.string.strip():
                continue
            if tok.type == tokenize.OP and tok.string not in _FORMULA_OPERATORS:
                self.fail(f"the operator {tok.string!r} is not allowed")
            if tok.type not in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING, tokenize.OP):
                self.fail(f"{tok.string!r} is not allowed")
            self.tokens.append(tok)
        self.i = 0

    # -- helpers
    def fail(self, why: str):
        raise ConfigError(
            f"formula {self.formula!r} is refused: {why}.  A formula may use column names, "
            "numbers, the operators ~ + - * / : ** ^ | and parentheses, and the transforms "
            f"{', '.join(sorted(FORMULA_FUNCTIONS))} (also as np.log etc.)")

    def peek(self, ahead: int = 0):
        j = self.i + ahead
        return self.tokens[j].string if j < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        if self.i >= len(self.tokens):
            self.fail("it ends too early" + (f" (expected {expected!r})" if expected else ""))
        tok = self.tokens[self.i]
        if expected is not None and tok.string != expected:
            self.fail(f"expected {expected!r} but found {tok.string!r}")
        self.i += 1
        return tok.string

    def kind(self, ahead: int = 0):
        j = self.i + ahead
        return self.tokens[j].type if j < len(self.tokens) else None

    def take_column(self, where: str) -> str:
        if self.kind() != tokenize.NAME or keyword.iskeyword(self.peek() or "") \
                or (self.peek() or "").startswith("__") or self.peek(1) in ("(", "."):
            self.fail(f"{where} takes plain column names, got {self.peek()!r}")
        return self.take()

    # -- grammar
    def check(self) -> None:
        if not self.tokens:
            self.fail("it is empty")
        if self.peek() != "~":
            self.sum()
        self.take("~")
        self.sum()
        if self.i != len(self.tokens):
            self.fail(f"unexpected {self.peek()!r}")

    def sum(self) -> None:
        if self.peek() in ("+", "-"):
            self.take()
        self.product()
        while self.peek() in ("+", "-"):
            self.take()
            self.product()

    def product(self) -> None:
        self.unary()
        while self.peek() in (":", "*", "/", "**", "^"):
            self.take()
            self.unary()

    def unary(self) -> None:
        if self.peek() == "-":
            self.take()
            self.unary()
            return
        self.atom()

    def atom(self) -> None:
        tok = self.peek()
        if tok is None:
            self.fail("it ends too early")
        kind = self.kind()
        if kind == tokenize.NUMBER:
            self.take()
            return
        if tok == "(":
            self.take("(")
            self.sum()
            if self.peek() == "|":
                self.take("|")
                if self.peek() == "|":
                    self.take("|")
                self.sum()
            self.take(")")
            return
        if kind != tokenize.NAME:
            if kind == tokenize.STRING:
                self.fail(f"a string ({tok}) may only appear as Q(\"column name\")")
            self.fail(f"unexpected {tok!r}")
        self.name_or_call()

    def name_or_call(self) -> None:
        name = self.take()
        if keyword.iskeyword(name) and name not in ("True", "False"):
            self.fail(f"the Python keyword {name!r} is not allowed")
        if name.startswith("__") or name.endswith("__"):
            self.fail(f"the name {name!r} is not allowed")
        if self.peek() == ".":
            self.take(".")
            attribute = self.take()
            if name not in ("np", "numpy") or attribute not in _NUMPY_FUNCTIONS \
                    or self.peek() != "(":
                self.fail(f"attribute access {name}.{attribute} is not allowed (only "
                          f"np.{{{', '.join(sorted(_NUMPY_FUNCTIONS))}}}(...))")
            self.take("(")
            self.sum()
            self.take(")")
            return
        if self.peek() != "(":
            return  # a column name
        if name == "mm":
            self.take("(")
            self.take_column("mm()")
            if self.peek() != ",":
                self.fail("mm() takes two or more column names, e.g. mm(source, target)")
            while self.peek() == ",":
                self.take(",")
                self.take_column("mm()")
            self.take(")")
            return
        if name not in FORMULA_FUNCTIONS:
            self.fail(f"the call {name}(...) is not an allowed transform")
        self.take("(")
        if name == "Q":
            if self.kind() != tokenize.STRING:
                self.fail("Q() takes one quoted column name")
            literal = self.take()
            if not re.fullmatch(r"""[rRuU]?(['"])[^'"\\\n]*\1""", literal):
                self.fail(f"Q() takes a plain quoted column name, got {literal}")
        elif name == "C":
            self.sum()
            if self.peek() == ",":
                self.take(",")
                contrast = self.take()
                if contrast not in _CONTRASTS:
                    self.fail(f"C() takes a contrast from {', '.join(sorted(_CONTRASTS))}, "
                              f"got {contrast!r}")
        else:
            self.sum()
            while self.peek() == ",":
                self.take(",")
                if self.kind() != tokenize.NUMBER:
                    self.fail(f"extra arguments of {name}() must be numbers")
                self.take()
        self.take(")")


def check_formula(formula) -> str:
    """Refuse a formula that is anything but column names, numbers, formula operators and the
    allowed transforms (see :data:`FORMULA_FUNCTIONS`); returns the formula unchanged.

    This runs before patsy evaluates any part of the formula: patsy turns each term into Python
    code, so a formula from a configuration file must not be able to express a call.
    """
    if not isinstance(formula, str):
        raise ConfigError(f"a formula must be a string, got {type(formula).__name__}")
    _FormulaGrammar(formula).check()
    return formula


@dataclass
class RandomTerm:
    """One ``(expr | group)`` term after evaluation against the data."""

    expr: str                 # the left of the bar as written, e.g. "1 + x"
    group: str                # the grouping factor as written, e.g. "source" or "source:target"
    column_names: list        # lme4 names of the term's columns, e.g. ["(Intercept)", "x"]
    matrix: np.ndarray        # n x k model matrix of the term
    codes: np.ndarray         # n integer level codes, 0 .. n_levels-1 (n x members for mm())
    levels: list              # level labels (strings), position = code
    members: tuple = ()       # the columns of a multi-membership factor mm(a, b); () otherwise

    @property
    def is_multi_membership(self) -> bool:
        return bool(self.members)

    @property
    def member_codes(self) -> np.ndarray:
        """n x m level codes, one column per member (m = 1 for a plain factor)."""
        return self.codes if self.codes.ndim == 2 else self.codes[:, None]

    @property
    def loading(self) -> np.ndarray:
        """Per row, the sum of squared weights on the levels it loads on: 1 for a plain factor,
        the number of members for ``mm()`` (4 where both members of two name the same level), so
        that the row's random-effect variance is ``loading * z' Sigma z``."""
        codes = self.member_codes
        if codes.shape[1] == 1:
            return np.ones(len(codes))
        same = codes[:, :, None] == codes[:, None, :]
        return same.sum(axis=(1, 2)).astype(float)

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


_MM = re.compile(r"^mm\s*\((?P<members>[^()]*)\)$")


def multi_membership_members(group: str) -> tuple[str, ...] | None:
    """The member columns of a grouping factor written ``mm(a, b, ...)``; None for any other."""
    match = _MM.match(group.strip())
    if not match:
        return None
    return tuple(m.strip() for m in match.group("members").split(","))


def _normalise_group(group: str, formula: str) -> str:
    members = multi_membership_members(group)
    if members is None:
        if "mm(" in group.replace(" ", ""):
            raise ConfigError(f"grouping factor {group!r} in {formula!r}: mm(...) is a grouping factor "
                              "on its own and cannot be nested or interacted")
        return group
    if len(set(members)) != len(members):
        raise ConfigError(f"grouping factor {group!r} in {formula!r} names a column twice")
    return f"mm({', '.join(members)})"


_BAR = re.compile(r"^\(\s*(.*?)\s*(\|\|?)\s*([^|]+?)\s*\)$", re.S)


def parse_formula(formula: str) -> ParsedFormula:
    """Split an lme4-style formula into response, fixed right-hand side and random terms."""
    if not isinstance(formula, str) or "~" not in formula:
        raise ConfigError(f"a mixed-model formula needs the form 'y ~ terms', got {formula!r}")
    check_formula(formula)
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
            groups = [_normalise_group(g, formula) for g in _expand_nesting(group)]
            if bar == "||":
                for sub_expr in _uncorrelated_parts(expr):
                    random.extend((sub_expr, g) for g in groups)
            else:
                random.extend((expr, g) for g in groups)
        else:
            if "|" in body:
                raise ConfigError(
                    f"random term {part!r} in {formula!r} must be written in parentheses, e.g. (1 | source)")
            if re.search(r"\bmm\s*\(", body):
                raise ConfigError(f"{part!r} in {formula!r}: mm(...) is a grouping factor, written on the "
                                  "right of '|' as in (1 | mm(source, target))")
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
    check_formula(formula)
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
            design = patsy.dmatrix(check_formula("~ " + expr)[2:], data, eval_env=formula_env(),
                                   return_type="dataframe", NA_action="raise")
        except patsy.PatsyError as exc:
            raise ConfigError(f"cannot evaluate random term ({expr} | {group}): {exc}") from None
        names = [_lme4_name(c) for c in design.columns]
        if not names:
            raise ConfigError(f"random term ({expr} | {group}) has no columns")
        members = multi_membership_members(group) or ()
        group_columns = list(members) if members else [g.strip() for g in group.split(":")]
        for g in group_columns:
            if g not in data.columns:
                raise InputError(f"grouping factor {g!r} of ({expr} | {group}) is not a column of the data",
                                 column=g)
        if members:
            labels = np.column_stack([data[g].astype(str).to_numpy() for g in members])
            levels = np.unique(labels)
            codes = np.searchsorted(levels, labels)
        else:
            labels = data[group_columns[0]].astype(str)
            for g in group_columns[1:]:
                labels = labels + ":" + data[g].astype(str)
            codes, levels = pd.factorize(labels.to_numpy(), sort=True)
        terms.append(RandomTerm(expr=expr, group=group, column_names=names,
                                matrix=np.asarray(design, dtype=float), codes=codes.astype(np.int64),
                                levels=[str(v) for v in levels], members=tuple(members)))
    return terms


# -- OLS formulas (fit_ols): plain columns only ---------------------------------------------------

_Q_TERM = re.compile(r"""^Q\(\s*(['"])(?P<name>.*)\1\s*\)$""")


def _column_of(term: str, what: str, formula: str) -> str:
    match = _Q_TERM.match(term)
    if match:
        return match.group("name")
    if not term.isidentifier():
        raise ConfigError(
            f"fit_ols formula {formula!r}: the {what} {term!r} is not a column name; fit_ols takes "
            "plain numeric columns (it standardises each one), so compute a transformed or interaction "
            "column in the data first (or write an odd column name as Q(\"name\"))")
    return term


def parse_ols_formula(formula: str) -> tuple[str, list[str]]:
    """``"score ~ a + b"`` -> ``("score", ["a", "b"])``.

    The intercept is always fitted: ``1 +`` may be written, ``0 +`` / ``- 1`` is refused, as are
    transforms and interactions (see :func:`fit_ols`).
    """
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ConfigError(f"an OLS formula needs the form 'score ~ feature + ...', got {formula!r}")
    lhs, rhs = (part.strip() for part in formula.split("~"))
    if not lhs:
        raise ConfigError(f"fit_ols formula {formula!r} has no response on the left of '~'")
    response = _column_of(lhs, "response", formula)
    features = []
    for term in _split_top_level_plus(rhs):
        body = term[1:].strip() if term.startswith("+") else term
        if body == "1":
            continue
        if body in ("0", "-1", "- 1"):
            raise ConfigError(f"fit_ols formula {formula!r}: the model always has an intercept "
                              "(the features are centred); drop '0 +' / '- 1'")
        if body.startswith("-"):
            raise ConfigError(f"fit_ols formula {formula!r}: cannot subtract the term {body!r}")
        if "|" in body:
            raise ConfigError(f"fit_ols formula {formula!r} has the random term {body!r}; use fit_mixed")
        features.append(_column_of(body, "term", formula))
    if not features:
        raise ConfigError(f"fit_ols formula {formula!r} names no feature column")
    return response, features
