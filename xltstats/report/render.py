"""Render the fit report (``templates/report.qmd``) into one self-contained HTML file.

With Quarto on ``PATH`` the template is rendered by ``quarto render`` (jupyter engine, the fit folder
passed as the ``fit_dir`` parameter).  Without Quarto the same template is rendered here: its Python
cells run in order (in this process, or in a Jupyter kernel with ``engine="kernel"``), the Markdown
they print (``#| output: asis``) is spliced between the template's Markdown, and pandoc (from
``pypandoc-binary``) turns the result into standalone HTML with every image embedded as a data URI
and formulas as MathML, so the file opens offline.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from xltstats._io import atomic_write_with
from xltstats.errors import XltstatsError
from xltstats.report.escape import PANDOC_INPUT, sanitize_html

ENGINES = ("auto", "quarto", "python", "kernel")

# A small stylesheet, embedded in the HTML (no external fonts or styles).
STYLE = """<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       max-width: 72rem; margin: 0 auto; padding: 1rem 2rem; line-height: 1.45; color: #1b1b1b; }
img { max-width: 100%; height: auto; }
figure { margin: 1.5rem 0; }
figcaption { font-size: 0.9rem; color: #444; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.85rem; display: block; overflow-x: auto;
        max-width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.6rem; text-align: left; }
thead th { border-bottom: 2px solid #888; }
caption { caption-side: bottom; font-size: 0.85rem; color: #444; text-align: left; padding-top: 0.3rem; }
pre { background: #f5f5f5; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }
.callout-note { border-left: 4px solid #5a8fd6; background: #f2f6fc; padding: 0.3rem 0.8rem; margin: 1rem 0; }
nav#TOC { font-size: 0.9rem; }
</style>
"""


class RenderError(XltstatsError):
    """The report could not be rendered."""


@dataclass
class Cell:
    kind: str  # "markdown" or "code"
    source: str
    options: dict = field(default_factory=dict)


def template_path() -> Path:
    """The packaged report template."""
    return Path(str(resources.files("xltstats.report.templates").joinpath("report.qmd")))


_FENCE = re.compile(r"^```\{python\}[ \t]*\n(.*?)^```[ \t]*$\n?", re.S | re.M)


def parse_qmd(text: str) -> tuple[dict, list[Cell]]:
    """Split a Quarto document into its YAML front matter and Markdown / Python cells."""
    front: dict = {}
    body = text
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end < 0:
            raise RenderError("report template: front matter is not closed by '---'")
        front = yaml.safe_load(text[4:end]) or {}
        body = text[end + 5:]
    cells: list[Cell] = []
    position = 0
    for match in _FENCE.finditer(body):
        markdown = body[position:match.start()]
        if markdown.strip():
            cells.append(Cell("markdown", markdown.strip("\n")))
        lines = match.group(1).splitlines()
        option_lines = [line[3:] for line in lines if line.startswith("#| ")]
        code = "\n".join(line for line in lines if not line.startswith("#| "))
        options = yaml.safe_load("\n".join(option_lines)) if option_lines else {}
        cells.append(Cell("code", code, options or {}))
        position = match.end()
    tail = body[position:]
    if tail.strip():
        cells.append(Cell("markdown", tail.strip("\n")))
    return front, cells


def _is_parameters(cell: Cell) -> bool:
    return "parameters" in (cell.options.get("tags") or [])


def _parameter_code(fit_dir: Path) -> str:
    return f"fit_dir = {str(fit_dir)!r}"


def _cell_markdown(cell: Cell, text: str) -> str:
    if not text.strip():
        return ""
    if cell.options.get("output") == "asis":
        return text
    return "```\n" + text.rstrip("\n") + "\n```\n"


def _execute_in_process(cells: list[Cell], fit_dir: Path) -> list[str]:
    namespace: dict = {"__name__": "__xltstats_report__"}
    outputs = []
    for number, cell in enumerate(cells, start=1):
        if cell.kind != "code":
            outputs.append(cell.source)
            continue
        code = cell.source + ("\n" + _parameter_code(fit_dir) if _is_parameters(cell) else "")
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                exec(compile(code, f"<report.qmd cell {number}>", "exec"), namespace)
        except Exception as exc:
            detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
            raise RenderError(f"report cell {number} failed: {exc}\n{detail}") from exc
        outputs.append(_cell_markdown(cell, buffer.getvalue()))
    return outputs


def _execute_in_kernel(cells: list[Cell], fit_dir: Path, kernel_name: str = "python3",
                       timeout: int = 600) -> list[str]:
    import nbformat
    from nbclient.exceptions import CellExecutionError
    from nbconvert.preprocessors import ExecutePreprocessor

    notebook = nbformat.v4.new_notebook()
    code_cells = []
    for cell in cells:
        if cell.kind == "code":
            code = cell.source + ("\n" + _parameter_code(fit_dir) if _is_parameters(cell) else "")
            code_cells.append(cell)
            notebook.cells.append(nbformat.v4.new_code_cell(code))
    processor = ExecutePreprocessor(kernel_name=kernel_name, timeout=timeout)
    try:
        processor.preprocess(notebook, {"metadata": {"path": str(fit_dir)}})
    except CellExecutionError as exc:
        raise RenderError(f"a report cell failed in the Jupyter kernel: {exc}") from exc
    printed = iter([
        "".join(o.get("text", "") for o in nb_cell.outputs if o.get("output_type") == "stream"
                and o.get("name") == "stdout")
        for nb_cell in notebook.cells
    ])
    outputs = []
    for cell in cells:
        outputs.append(cell.source if cell.kind == "markdown" else _cell_markdown(cell, next(printed)))
    return outputs


_FIGURE = re.compile(r"!\[(?P<caption>(?:[^\[\]\\]|\\.|\[[^\]]*\])*)\]\((?P<src>[^)\s]+)\)"
                     r"\{#(?P<id>fig-[\w-]+)(?P<rest>[^}]*)\}")
_TABLE_DIV = re.compile(r"^::: \{#(?P<id>tbl-[\w-]+)\}\n(?P<body>.*?)^:::$", re.S | re.M)
_REFERENCE = re.compile(r"(?<![\w#\\])@(?P<id>(?:fig|tbl)-[\w-]*\w)")


def number_crossrefs(markdown: str) -> str:
    """Quarto's figure and table cross-references, for the engine without Quarto.

    The sections write Quarto's syntax -- a figure ``![caption](file.png){#fig-NAME}``, a table
    inside ``::: {#tbl-NAME}`` with its ``: caption`` line, a reference ``@fig-NAME`` -- which
    Quarto numbers itself (and restyles as its theme says).  Here each figure's caption becomes
    ``Figure N: caption`` and each table's ``Table N: caption`` in order of appearance, and every
    reference a link ``[Figure N](#fig-NAME)``; a reference to a label the report lacks reads
    ``?@fig-NAME``, as Quarto writes it.
    """
    numbers: dict[str, str] = {}

    def figure(match: re.Match) -> str:
        label = f"Figure {sum(k.startswith('fig-') for k in numbers) + 1}"
        numbers[match["id"]] = label
        return f"![{label}: {match['caption']}]({match['src']}){{#{match['id']}{match['rest']}}}"

    def table(match: re.Match) -> str:
        label = f"Table {sum(k.startswith('tbl-') for k in numbers) + 1}"
        numbers[match["id"]] = label
        body = re.sub(r"^: ", f": {label}: ", match["body"], count=1, flags=re.M)
        return f"::: {{#{match['id']}}}\n{body}:::"

    # figures and tables numbered in the order they appear
    pieces = sorted([(m.start(), "f") for m in _FIGURE.finditer(markdown)]
                    + [(m.start(), "t") for m in _TABLE_DIV.finditer(markdown)])
    if pieces:
        out, position = [], 0
        for start, kind in pieces:
            pattern = _FIGURE if kind == "f" else _TABLE_DIV
            match = pattern.match(markdown, start) if kind == "f" else pattern.search(markdown, start)
            out.append(markdown[position:match.start()])
            out.append(figure(match) if kind == "f" else table(match))
            position = match.end()
        out.append(markdown[position:])
        markdown = "".join(out)

    def reference(match: re.Match) -> str:
        key = match["id"]
        return f"[{numbers[key]}](#{key})" if key in numbers else f"?\\@{key}"

    return _REFERENCE.sub(reference, markdown)


def quarto_markdown(fit_dir: str | Path, *, template: str | Path | None = None,
                    engine: str = "python") -> tuple[dict, str]:
    """Execute the template against ``fit_dir``: its front matter and the Markdown Quarto would
    receive (figures ``{#fig-...}``, tables in ``::: {#tbl-...}``, references ``@fig-...``, not yet
    numbered)."""
    fit_dir = Path(fit_dir).resolve()
    text = Path(template or template_path()).read_text(encoding="utf-8")
    front, cells = parse_qmd(text)
    if engine == "kernel":
        outputs = _execute_in_kernel(cells, fit_dir)
    else:
        outputs = _execute_in_process(cells, fit_dir)
    return front, "\n\n".join(o.strip("\n") for o in outputs if o.strip())


def render_markdown(fit_dir: str | Path, *, template: str | Path | None = None, engine: str = "python") -> str:
    """Execute the template against ``fit_dir`` and return the resulting Pandoc Markdown."""
    front, markdown = quarto_markdown(fit_dir, template=template, engine=engine)
    metadata = {"title": front.get("title", "xltstats report"), "lang": "en"}
    if front.get("subtitle"):
        metadata["subtitle"] = front["subtitle"]
    header = "---\n" + yaml.safe_dump(metadata, sort_keys=True, allow_unicode=True) + "---\n\n"
    return header + number_crossrefs(markdown) + "\n"


def _pandoc_html(markdown: str, output: Path, resource_dir: Path) -> None:
    import pypandoc

    with tempfile.TemporaryDirectory(prefix="xltstats-report-") as scratch:
        header = Path(scratch) / "style.html"
        header.write_text(STYLE, encoding="utf-8")
        source = Path(scratch) / "report.md"
        source.write_text(markdown, encoding="utf-8")
        version = tuple(int(p) for p in re.findall(r"\d+", pypandoc.get_pandoc_version())[:2])
        embed = "--embed-resources" if version >= (2, 19) else "--self-contained"
        args = ["--standalone", embed, "--mathml", "--toc", "--toc-depth=3", "--section-divs",
                f"--include-in-header={header}", f"--resource-path={resource_dir}{os.pathsep}{scratch}",
                "--wrap=none"]
        try:
            pypandoc.convert_file(str(source), "html5", format=PANDOC_INPUT, extra_args=args,
                                  outputfile=str(output))
        except (RuntimeError, OSError) as exc:
            raise RenderError(f"pandoc failed: {exc}") from exc


def _quarto_html(quarto: str, fit_dir: Path, output: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="xltstats-quarto-") as scratch:
        shutil.copyfile(template_path(), Path(scratch) / "report.qmd")
        command = [quarto, "render", "report.qmd", "--to", "html", "-P", f"fit_dir:{fit_dir}",
                   "--output", "report.html"]
        done = subprocess.run(command, cwd=scratch, capture_output=True, text=True)
        produced = Path(scratch) / "report.html"
        if done.returncode != 0 or not produced.is_file():
            raise RenderError(f"quarto render failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        shutil.copyfile(produced, output)


def render_report(fit_dir: str | Path, out: str | Path | None = None, *, engine: str = "auto",
                  quiet: bool = True) -> Path:
    """Render the report of the fit folder ``fit_dir`` into ``out`` (default ``fit_dir/report.html``).

    ``engine``: ``auto`` (Quarto when on PATH, else ``python``), ``quarto``, ``python`` (cells run in
    this process, pandoc writes the HTML) or ``kernel`` (cells run in a Jupyter kernel).  The output
    is written atomically; returns its path.
    """
    if engine not in ENGINES:
        raise RenderError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    fit_dir = Path(fit_dir).resolve()
    if not fit_dir.is_dir():
        raise RenderError(f"{fit_dir}: no such fit folder")
    out = Path(out).resolve() if out is not None else fit_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    quarto = shutil.which("quarto") if engine in ("auto", "quarto") else None
    if engine == "quarto" and quarto is None:
        raise RenderError("engine 'quarto' requested but no quarto on PATH")
    started = time.perf_counter()

    def write(tmp: str) -> None:
        if quarto is not None:
            _quarto_html(quarto, fit_dir, Path(tmp))
        else:
            markdown = render_markdown(fit_dir, engine="kernel" if engine == "kernel" else "python")
            _pandoc_html(markdown, Path(tmp), fit_dir)
            # Values from the fit folder cannot carry script into the page (see report.escape);
            # Quarto's own output holds Quarto's scripts, so only the Markdown escaping applies there.
            Path(tmp).write_text(sanitize_html(Path(tmp).read_text(encoding="utf-8")), encoding="utf-8")

    atomic_write_with(out, write)
    if not quiet:
        print(f"wrote {out} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return out
