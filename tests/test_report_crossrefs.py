"""The report's Quarto source (issue 15): every figure has a ``#fig-`` id and every table sits in a
``::: {#tbl-...}`` div with its caption, as Quarto's cross-references need, ids are unique, and every
``@fig-``/``@tbl-`` reference names an id the report defines."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from xltstats.report.render import _REFERENCE, quarto_markdown

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures" / "fit_small"))
from make_fit_small import make_fit  # noqa: E402

# Any Markdown image (caption with escaped or bracketed parts), and the attribute block after it.
_IMAGE = re.compile(r"!\[(?:[^\[\]\\]|\\.|\[[^\]]*\])*\]\([^)\s]+\)(?P<attributes>\{[^}]*\})?")
_DIV_OPEN = re.compile(r"^:::+\s*(?P<attributes>\{[^}]*\})\s*$")
_DIV_CLOSE = re.compile(r"^:::+\s*$")
_TABLE_RULE = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+\s*$")


def crossref_problems(markdown: str) -> list[str]:
    """What in ``markdown`` Quarto could not number or resolve."""
    problems, ids = [], []
    for image in _IMAGE.finditer(markdown):
        found = re.match(r"\{#(fig-[\w-]+)", image["attributes"] or "")
        if found:
            ids.append(found.group(1))
        else:
            problems.append(f"figure without a #fig- id: {image.group(0)[:80]}")
    stack: list[dict] = []
    lines = markdown.splitlines()
    for number, line in enumerate(lines):
        opened = _DIV_OPEN.match(line)
        if opened:
            found = re.match(r"\{#(tbl-[\w-]+)", opened["attributes"])
            stack.append({"id": found.group(1) if found else None, "caption": False, "tables": 0})
            if found:
                ids.append(found.group(1))
        elif _DIV_CLOSE.match(line):
            if not stack:
                problems.append(f"line {number + 1}: ::: closes no div")
                continue
            div = stack.pop()
            if div["id"] and (div["tables"] != 1 or not div["caption"]):
                problems.append(f"{div['id']}: {div['tables']} table(s), caption {div['caption']}")
        elif _TABLE_RULE.match(line) and number > 0 and lines[number - 1].startswith("|"):
            holder = next((d for d in reversed(stack) if d["id"]), None)
            if holder is None:
                problems.append(f"table without a #tbl- div: {lines[number - 1][:80]}")
            else:
                holder["tables"] += 1
        elif line.startswith(": ") and stack and stack[-1]["id"]:
            stack[-1]["caption"] = True
    problems += [f"div not closed: {d['id']}" for d in stack]
    problems += [f"id used twice: {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    problems += [f"@{ref} resolves to nothing" for ref in sorted({m["id"] for m in _REFERENCE.finditer(markdown)})
                 if ref not in ids]
    return problems


def test_the_checker_finds_what_quarto_would_not_number():
    good = ("See @fig-a and @tbl-b.\n\n![Cap](a.png){#fig-a}\n\n::: {#tbl-b}\n| x |\n|---|\n| 1 |\n\n: Cap\n:::\n")
    assert crossref_problems(good) == []
    assert crossref_problems(good.replace("{#fig-a}", "")) == [
        "figure without a #fig- id: ![Cap](a.png)", "@fig-a resolves to nothing"]
    assert crossref_problems(good.replace("::: {#tbl-b}\n", "").replace("\n:::\n", "\n")) == [
        "table without a #tbl- div: | x |", "@tbl-b resolves to nothing"]
    assert crossref_problems(good.replace(": Cap\n", "")) == ["tbl-b: 1 table(s), caption False"]
    assert crossref_problems(good + "\n@tbl-c\n") == ["@tbl-c resolves to nothing"]
    assert crossref_problems(good + "\n![Other](c.png){#fig-a}\n") == ["id used twice: fig-a"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    fit = make_fit(tmp_path_factory.mktemp("fit") / "fit_small", seed=0)
    # the notes whose warnings point at a table (@tbl-report-vif, @tbl-report-cv)
    manifest = json.loads((fit / "manifest.json").read_text(encoding="utf-8"))
    manifest["notes"] = [*manifest.get("notes", []), "collinear features: a and b (VIF 12)",
                         "cross-validation failed: ols (R² -2)"]
    (fit / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    _front, markdown = quarto_markdown(fit)
    return markdown


def test_every_report_figure_and_table_has_a_quarto_id_and_every_reference_resolves(source):
    assert crossref_problems(source) == []
    figures = re.findall(r"\{#(fig-[\w-]+)", source)
    tables = re.findall(r"^::: \{#(tbl-[\w-]+)\}$", source, flags=re.M)
    references = {m["id"] for m in _REFERENCE.finditer(source)}
    # the fixture's report has both kinds, and references of both kinds, so the test checks something
    assert len(figures) >= 10 and len(tables) >= 10, (len(figures), len(tables))
    assert any(r.startswith("fig-") for r in references) and any(r.startswith("tbl-") for r in references)
    # the source is what Quarto numbers itself: no "Figure N:" written into it yet
    assert not re.search(r"(Figure|Table) \d+: ", source)
