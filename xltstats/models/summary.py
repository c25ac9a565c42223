"""Model summaries as objects, as statsmodels' ``summary()`` returns them: printed they are text,
in Jupyter they render as HTML (``_repr_html_``), and ``as_latex()`` gives a LaTeX block for a
paper (booktabs tables).

A :class:`Summary` holds a title, key-value facts, captioned tables and notes; the text form may
be laid out by the model itself (the mixed model's follows lme4's ``summary(merMod)``).  It is
immutable: built once from a fitted model, it does not change when the model is used further.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

from xltstats.models.tables import _latex_escape, format_value, table_to_latex

__all__ = ["Summary"]


@dataclass(frozen=True, eq=False)
class Summary:
    """A fitted model's summary (see the module docstring).

    ``facts``: ``(label, value)`` pairs shown above the tables; ``tables``: ``(caption, DataFrame)``
    pairs; ``notes``: warnings and remarks shown last; ``text``: the plain-text layout (when not
    given, one is made from the parts).
    """

    title: str
    facts: tuple = ()
    tables: tuple = ()
    notes: tuple = ()
    text: str | None = None
    digits: int = 4

    def __post_init__(self):
        object.__setattr__(self, "facts", tuple((str(k), v) for k, v in self.facts))
        object.__setattr__(self, "tables", tuple((str(c), t.copy()) for c, t in self.tables))
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))
        if self.text is None:
            object.__setattr__(self, "text", self._default_text())

    # -- renderings --------------------------------------------------------------------------------
    def _value(self, value) -> str:
        return format_value(value, self.digits, missing="NA")

    def _default_text(self) -> str:
        lines = [self.title]
        lines += [f"{label}: {self._value(value)}" for label, value in self.facts]
        for caption, table in self.tables:
            lines += ["", caption + ":" if caption else "",
                      table.to_string(index=False, na_rep="NA",
                                      float_format=lambda v: format_value(v, self.digits, "NA"))]
        if self.notes:
            lines += [""] + list(self.notes)
        return "\n".join(line for line in lines if line is not None)

    def as_text(self) -> str:
        return self.text

    def as_html(self) -> str:
        esc = html.escape
        parts = [f"<div class=\"xltstats-summary\"><h4>{esc(self.title)}</h4>"]
        if self.facts:
            parts.append("<table class=\"xltstats-facts\">" + "".join(
                f"<tr><th style=\"text-align:left\">{esc(label)}</th><td>{esc(self._value(value))}</td></tr>"
                for label, value in self.facts) + "</table>")
        for caption, table in self.tables:
            head = "".join(f"<th>{esc(str(c))}</th>" for c in table.columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(self._value(v))}</td>" for v in row) + "</tr>"
                for row in table.itertuples(index=False, name=None))
            cap = f"<caption style=\"text-align:left\">{esc(caption)}</caption>" if caption else ""
            parts.append(f"<table class=\"xltstats-table\">{cap}<thead><tr>{head}</tr></thead>"
                         f"<tbody>{body}</tbody></table>")
        if self.notes:
            parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in self.notes) + "</ul>")
        parts.append("</div>")
        return "".join(parts)

    def as_latex(self) -> str:
        """LaTeX: the facts as a two-column tabular, each table as a captioned booktabs table
        (needs ``\\usepackage{booktabs}``), the notes as an itemize list."""
        out = [f"% {self.title}", f"\\paragraph{{{_latex_escape(self.title)}}}"]
        if self.facts:
            rows = [f"{_latex_escape(label)} & {_latex_escape(self._value(value))} \\\\"
                    for label, value in self.facts]
            out.append("\n".join(["\\begin{tabular}{ll}", "\\toprule", *rows, "\\bottomrule",
                                  "\\end{tabular}"]))
        for caption, table in self.tables:
            out.append(table_to_latex(table, self.digits, caption=caption or None).rstrip("\n"))
        if self.notes:
            out.append("\\begin{itemize}\n" + "\n".join(f"\\item {_latex_escape(n)}" for n in self.notes)
                       + "\n\\end{itemize}")
        return "\n".join(out) + "\n"

    # -- protocols ---------------------------------------------------------------------------------
    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return self.as_html()

    def __contains__(self, piece: str) -> bool:
        """``"Residual" in summary``: whether the text form contains ``piece``."""
        return piece in self.text
