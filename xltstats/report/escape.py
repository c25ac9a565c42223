"""Text from data (model and task names, table cells, manifest fields) on its way into the report.

The report is Pandoc Markdown turned into HTML, and every value in it comes from files that someone
else may have written (a fit folder received from an author).  Two layers keep such values text:

* :func:`md_escape` writes a value as literal Markdown text: every character that can open Markdown
  or HTML syntax is backslash-escaped (Pandoc reads ``\\<`` as a literal ``<``), so a value can open
  no HTML tag, link, image, attribute block, code span, emphasis, math, citation or table cell.
  Newlines become spaces; an underscore inside a word (``n_for_0.9``) cannot open emphasis in
  Pandoc and is left as it is.
  Tables (:func:`xltstats.report.sections.markdown_table`) escape every header and cell this way.
* :func:`sanitize_html` is the last step of the rendered HTML: raw HTML in the Markdown is not
  enabled (``markdown-raw_html``, see :data:`PANDOC_INPUT`), and any event-handler attribute
  (``onload=`` ...) or URL with a scheme other than http(s), mailto, or an embedded image that
  survived anyway (e.g. a ``[x]{onclick=...}`` span written into a caption) is removed.
"""
from __future__ import annotations

import re

#: Pandoc's input format for the report: Markdown without raw HTML or raw-format blocks, so that
#: ``<script>`` in a value is shown as text, never passed through.
PANDOC_INPUT = "markdown-raw_html-raw_attribute-raw_tex"

_SPECIAL = frozenset("\\`*[]{}<>|$~^@&#:!\"'")


def md_escape(value) -> str:
    """``value`` as Markdown that renders as exactly its text."""
    text = str(value).replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    out = []
    for i, ch in enumerate(text):
        if ch in _SPECIAL:
            out.append("\\" + ch)
        elif ch == "_" and not (0 < i < len(text) - 1 and text[i - 1].isalnum()
                                and text[i + 1].isalnum()):
            out.append("\\_")
        else:
            out.append(ch)
    escaped = "".join(out)
    # a value at the start of a block must not read as a list item ("1. x", "- x", "+ x", "1) x")
    return re.sub(r"^(\s*)(\d+)([.)])(?=\s|$)", r"\1\2\\\3", re.sub(r"^(\s*)([-+])(?=\s|$)", r"\1\\\2", escaped))


_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*?)?(/?)>")
_ATTRIBUTE = re.compile(r"""\s+([^\s"'<>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+))?""")
_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "background",
                   "srcset", "data"}
_SAFE_URL = re.compile(r"^(#|https?:|mailto:|data:image/(png|jpeg|gif|webp|svg\+xml)[;,]|"
                       r"[^:/?#]*([/?#]|$))", re.I)
_FORBIDDEN_ELEMENTS = re.compile(r"<(script|iframe|object|embed|base|form)\b.*?(</\1\s*>|$)",
                                 re.I | re.S)


def _clean_attributes(match: re.Match) -> str:
    name, attributes, closing = match.group(1), match.group(2) or "", match.group(3)
    kept = []
    for attribute in _ATTRIBUTE.finditer(attributes):
        key, raw = attribute.group(1), attribute.group(2)
        lowered = key.lower()
        if lowered.startswith("on") or lowered in ("srcdoc", "formaction"):
            continue
        if lowered in _URL_ATTRIBUTES and raw is not None:
            value = raw.strip("\"'")
            decoded = re.sub(r"&#0*58;?|&colon;", ":", value, flags=re.I)
            decoded = re.sub(r"[\x00-\x20]", "", decoded)
            if not _SAFE_URL.match(decoded):
                raw = '"#"'
        kept.append(f" {key}" + (f"={raw}" if raw is not None else ""))
    return f"<{name}{''.join(kept)}{closing}>"


def sanitize_html(html: str) -> str:
    """``html`` without scripts, event handlers or script URLs (see the module's docstring)."""
    without = _FORBIDDEN_ELEMENTS.sub("", html)
    return _TAG.sub(_clean_attributes, without)


def md_code(value) -> str:
    """``value`` as an inline code span (fenced with more backticks than it contains)."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_code_block(value, language: str = "") -> str:
    """``value`` as a fenced code block whose fence no line of ``value`` can close."""
    text = str(value).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`{3,}|~{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}\n"
