"""CITATION.cff, the console script and the declared dependencies (issue 15)."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import yaml

import xltstats
from xltstats import cli

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# distribution name -> module it is imported as
IMPORT_NAMES = {"pyyaml": "yaml", "scikit-learn": "sklearn", "language-data": "language_data",
                "pypandoc-binary": "pypandoc"}
# declared but used without an import statement of their own, and why
USED_WITHOUT_IMPORT = {
    "lang2vec": "its .npz data files are read through importlib.resources (features/uriel.py)",
    "tabulate": "pandas DataFrame.to_markdown needs it (report/sections.py)",
    "jinja2": "pandas DataFrame.to_latex needs it (report/sections.py)",
    "ipykernel": "the report's `--engine kernel` runs the cells in a Jupyter kernel",
    "urielplus": "its Grambank CSV is read through importlib.resources (features/grambank.py)",
}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def _imported_modules() -> set[str]:
    found = set()
    for path in (ROOT / "xltstats").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_every_declared_dependency_is_used_and_every_import_declared():
    project = PYPROJECT["project"]
    declared = [_name(r) for r in project["dependencies"]]
    extras = [_name(r) for group in project["optional-dependencies"].values() for r in group]
    imported = _imported_modules()
    for dist in declared:
        module = IMPORT_NAMES.get(dist, dist.replace("-", "_"))
        assert module in imported or dist in USED_WITHOUT_IMPORT, f"{dist} is declared, never used"
    known = {IMPORT_NAMES.get(d, d.replace("-", "_")) for d in declared + extras}
    third_party = imported - set(sys.stdlib_module_names) - {"xltstats", "__future__"}
    # transformers' and torch's companions come with the [gpu] extra's packages
    undeclared = sorted(m for m in third_party if m not in known | {"safetensors", "huggingface_hub"})
    assert undeclared == [], f"imported but not declared: {undeclared}"
    assert "patsy" in declared and "jupytext" not in declared


def test_citation_cff_matches_the_package():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert str(cff["version"]) == PYPROJECT["project"]["version"] == xltstats.__version__
    assert cff["license"] == PYPROJECT["project"]["license"]["text"]
    assert cff["authors"] and "xltstats" in cff["title"]


def test_console_script_is_declared_and_dispatches(capsys):
    assert PYPROJECT["project"]["scripts"]["xltstats"] == "xltstats.cli:main"
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"xltstats {xltstats.__version__}"
    assert cli.main(["nonsense"]) == 2
    assert "unknown command 'nonsense'" in capsys.readouterr().err
    assert cli.main(["datasets", "--list"]) == 0
    assert "xpos" in capsys.readouterr().out
    assert cli.main(["fit", "--no-such-option"]) == 2        # argparse's exit status passed on
    for name, (module, _) in cli.COMMANDS.items():
        assert callable(__import__(module, fromlist=["main"]).main), name
    assert cli.main(["features", "--help"]) == 0
    assert "--individual-languages" in capsys.readouterr().out
