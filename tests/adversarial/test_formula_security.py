"""A mixed-model formula is data, not code: it is checked by a grammar before patsy evaluates it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import ConfigError
from xltstats.models.formula import check_formula, parse_formula


def _attacks(marker):
    m = str(marker)
    return [
        f"score ~ x + __import__('os').system('touch {m}') + (1|source)",
        f"score ~ x + (1 + __import__('pathlib').Path('{m}').touch() | source)",
        f"score ~ I(open('{m}', 'w').close()) + (1|source)",
        f"score ~ np.os.system('touch {m}') + (1|source)",
        f"score ~ x.__class__.__bases__ + (1|source)",
        f"score ~ C(x, eval) + (1|source)",
        f"score ~ exec('open(\"{m}\",\"w\")') + (1|source)",
        f"score ~ [open('{m}','w')] + (1|source)",
        f"score ~ (lambda: open('{m}','w'))() + (1|source)",
        f"score ~ x + (1|source) # ; open('{m}','w')",
        f"score ~ Q('{m}') + (1|source)\nimport os",
        f"score ~ getattr(np, 'os') + (1|source)",
        f"score ~ log(x).__globals__ + (1|source)",
        f"score ~ {{open('{m}','w')}} + (1|source)",
        f"score ~ x if open('{m}','w') else x + (1|source)",
    ]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame({"score": rng.normal(size=n), "x": rng.normal(size=n),
                         "source": [f"s{i % 6}" for i in range(n)]})


def test_python_in_a_formula_is_refused_before_evaluation(tmp_path, data):
    from xltstats.models.mixed import fit_mixed

    marker = tmp_path / "pwned"
    for formula in _attacks(marker):
        with pytest.raises(ConfigError, match="refused|formula"):
            check_formula(formula)
        with pytest.raises(ConfigError):
            parse_formula(formula)
        with pytest.raises(ConfigError):
            fit_mixed(formula, data)
        assert not marker.exists(), formula


def test_formula_in_a_fit_config_is_refused_before_any_data_is_read(tmp_path, capsys, monkeypatch):
    from xltstats.fit import main

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    config = tmp_path / "c.yaml"
    config.write_text('mixed:\n  formula: "score ~ x + __import__(\'os\').system(\'touch %s\') '
                      '+ (1|source)"\n' % marker, encoding="utf-8")
    code = main(["--data", str(tmp_path / "absent.csv"), "--config", str(config),
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "c.yaml" in err and "mixed.formula" in err and "refused" in err
    assert "Traceback" not in err and not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("formula", [
    "score ~ x + (1|source)", "score ~ log1p(x**2) + I(x * 2 - 1) + np.sqrt(x**2) + (1 + x | source)",
    "score ~ C(source, Sum) + x + (0 + x || source)", "score ~ scale(x) + (1 | source)", "score ~ center(x) + (1 | source)",
    "score ~ exp(x) + abs(x) + log(abs(x) + 1) + (1|source)",
])
def test_allowed_transforms_fit(formula, data):
    from xltstats.models.mixed import fit_mixed

    check_formula(formula)
    if "C(source" in formula:
        return  # source is also the grouping factor: only the grammar is checked here
    result = fit_mixed(formula, data)
    assert np.isfinite(result.llf)
