"""Script-bearing values in every text column of a fit folder never become markup in report.html.

A reviewer renders the report of a fit folder an author sent: model and task names, metric labels,
table cells, manifest fields (dataset name and title, notes, formulas, configuration) are all the
author's text.  Each payload below must appear in the HTML as text and nowhere as a tag, an
event-handler attribute or a script URL.
"""
from __future__ import annotations

import html as html_lib
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from xltstats.report import render_report
from xltstats.report.escape import md_escape, sanitize_html

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "fixtures" / "fit_small"))
from make_fit_small import make_fit  # noqa: E402

PAYLOADS = {
    "svg": "<svg onload=alert(1)>",
    "script": "<script>alert(2)</script>",
    "link": "[x](javascript:alert(3))",
    "span": "[y]{onclick=alert(4)}",
    "image": "![z](https://evil.invalid/t.png){onerror=alert(5)}",
    "img": '<img src=x onerror="alert(6)">',
    "code": "`a` | *b* $c$ @d",
}


def _poison_fit(fit: Path) -> None:
    results = pd.read_csv(fit / "results.csv")
    renames = {"model": {"mbert": PAYLOADS["svg"], "xlmr": PAYLOADS["link"]},
               "task": {"ner": PAYLOADS["script"], "pos": PAYLOADS["span"]}}
    for name in ["results.csv", "predictions.csv", "cv.csv"] + \
            [f"tables/{p.name}" for p in sorted((fit / "tables").glob("*.csv"))]:
        path = fit / name
        frame = pd.read_csv(path)
        for column, mapping in renames.items():
            if column in frame.columns:
                frame[column] = frame[column].replace(mapping)
        text_columns = [c for c in frame.columns if frame[c].dtype == object
                        and c not in ("model", "task", "source", "target", "metric")]
        for column in text_columns[:1]:  # one more free-text column per table
            frame[column] = frame[column].astype(str) + " " + PAYLOADS["img"]
        frame.to_csv(path, index=False)
    del results
    manifest = json.loads((fit / "manifest.json").read_text())
    manifest["dataset"]["name"] = PAYLOADS["svg"]
    manifest["dataset"]["title"] = PAYLOADS["image"]
    manifest["dataset"]["citation"] = PAYLOADS["script"]
    manifest["notes"] = [PAYLOADS["img"], PAYLOADS["code"]]
    manifest["formulas"]["ols"] = "score ~ x ` " + PAYLOADS["svg"]
    manifest["config"]["data"] = PAYLOADS["link"]
    manifest["estimators"]["ols"] = PAYLOADS["span"]
    (fit / "manifest.json").write_text(json.dumps(manifest))


def _tags(html: str) -> list[str]:
    return re.findall(r"<[a-zA-Z][^>]*>", html)


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict]]:
    parser = _Elements()
    parser.feed(html)
    return parser.elements


@pytest.fixture(scope="module")
def poisoned_html(tmp_path_factory):
    fit = make_fit(tmp_path_factory.mktemp("poison") / "fit", seed=0)
    _poison_fit(fit)
    return render_report(fit, engine="python").read_text(encoding="utf-8")


def test_no_payload_becomes_markup(poisoned_html):
    elements = _elements(poisoned_html)
    assert elements and not [t for t, _ in elements if t in ("script", "svg", "iframe", "object", "embed")]
    assert not [(t, a) for t, a in elements if any(k.lower().startswith("on") for k in a)]
    urls = [v or "" for _, a in elements for k, v in a.items() if k in ("href", "src")]
    assert not [u for u in urls if re.sub(r"\s", "", u).lower().startswith("javascript:")]
    assert not [u for u in urls if "evil.invalid" in u]


def test_payloads_are_shown_as_text(poisoned_html):
    text = html_lib.unescape(re.sub(r"<[^>]*>", "", poisoned_html))
    for name in ("svg", "script", "link", "span"):
        assert PAYLOADS[name] in text, name
    assert "&lt;svg onload=alert(1)&gt;" in poisoned_html


def test_md_escape_round_trips_through_pandoc():
    import pypandoc

    from xltstats.report.escape import PANDOC_INPUT

    for value in list(PAYLOADS.values()) + ["n_for_0.9", "a_b", "_x_", "\\*", "1. item", "# h", "::: x"]:
        out = pypandoc.convert_text(md_escape(value), "html5", format=PANDOC_INPUT)
        assert html_lib.unescape(re.sub(r"<[^>]*>", "", out)).strip() == value, value
        assert _tags(out) in ([], ["<p>"]), (value, out)


def test_sanitize_html_drops_handlers_and_script_urls():
    dirty = ('<p><span onclick="alert(1)" class="a">x</span><a href="javascript:alert(2)">y</a>'
             '<a href="https://ok.example/">z</a><img src="data:image/png;base64,AAAA" alt="i">'
             '<a href=" java&#58;script:alert(3)">w</a><script>alert(4)</script></p>')
    clean = sanitize_html(dirty)
    assert "onclick" not in clean and "javascript" not in clean and "<script" not in clean
    assert 'href="https://ok.example/"' in clean and 'src="data:image/png;base64,AAAA"' in clean
    assert 'class="a"' in clean
