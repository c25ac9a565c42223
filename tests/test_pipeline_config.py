"""FitConfig: one home of every default, validated with messages naming file and key."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from xltstats.errors import ConfigError
from xltstats.paths import package_data
from xltstats.pipeline.config import FitConfig, default_dict, load_config


def test_shipped_yaml_and_dataclass_defaults_agree():
    with open(package_data("fit_default.yaml"), encoding="utf-8") as fh:
        shipped = yaml.safe_load(fh)
    assert shipped == FitConfig().to_dict()
    assert FitConfig.from_dict(shipped) == FitConfig()
    assert default_dict() == FitConfig().to_dict(full=True)
    # the fallbacks that once contradicted the YAML
    assert FitConfig().ols.cov_type == "cluster2" and FitConfig().ols.standardise is True


def test_yaml_merges_over_the_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("ols: {n_boot: 50}\ngroups: {syntax: [syntactic_distance, inventory_distance]}\n",
                    encoding="utf-8")
    config = load_config(path, {"seed": 7, "data": None})
    assert config.ols.n_boot == 50 and config.ols.cov_type == "cluster2"
    assert config.groups["syntax"] == ("syntactic_distance", "inventory_distance")
    assert config.groups["lexical"] == FitConfig().groups["lexical"]
    assert config.seed == 7 and config.data == "xpos"
    assert config.replace(cv={"k": 3}).cv.k == 3


# The wrong types and values of issue 18, each a clear error naming the file and the key.
BAD = [
    ("seed: true\n", "'seed' must be an integer >= 0 and <= 4294967295, got True"),
    ("seed: -3\n", "'seed' must be an integer >= 0 and <= 4294967295, got -3"),
    ("seed: 100000000000000000000000\n", "'seed' must be an integer >= 0 and <= 4294967295"),
    ("cv: 5\n", "'cv' must be a mapping of settings, got 5"),
    ("ols: fast\n", "'ols' must be a mapping of settings, got 'fast'"),
    ("ols: {n_boot: many}\n", "'ols.n_boot' must be an integer >= 1, got 'many'"),
    ("mixed: {ci_boot: lots}\n", "'mixed.ci_boot' must be an integer >= 1 or null, got 'lots'"),
    ("ranking: {k: three}\n", "'ranking.k' must be an integer >= 1, got 'three'"),
    ("fewshot: {target_shares: [2.0, x]}\n", "'fewshot.target_shares[0]' must be a number in (0, 1], got 2.0"),
    ("fewshot: {target_shares: [0.5, x]}\n", "'fewshot.target_shares[1]' must be a number in (0, 1], got 'x'"),
    ("mixed: {reml: maybe}\n", "'mixed.reml' must be true or false, got 'maybe'"),
    ("mixed: {reml: 1}\n", "'mixed.reml' must be true or false, got 1"),
    ("report: 'no'\n", "'report' must be true or false, got 'no'"),
    ("groups: {syntax: [syntatic_distance]}\n", "'groups.syntax' names 'syntatic_distance'"),
    ("unknown_key: 1\n", "unknown setting(s) unknown_key"),
    ("ols: {cov: HC3}\n", "'ols' has unknown setting(s) 'cov'"),
    ("ols: {cov_type: HC9}\n", "'ols.cov_type' must be one of HC3, cluster2, dyadic, nonrobust, got 'HC9'"),
    ("features: syntactic_distance\n", "'features' must be a list of column names"),
    ("compare: [[syntax, nope]]\n", "'compare[0]' must be a pair of group names"),
    ("cv: {schemes: [leave-one-out]}\n", "'cv.schemes[0]' must be one of"),
    ("mixed: {formula: 3}\n", "'mixed.formula' must be an lme4-style formula"),
    ("- a list\n", "expected a mapping of settings at the top level"),
    ("seed: [\n", "not valid YAML"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_bad_settings_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_latin1_config_names_line_and_column(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("seed: 1\n# Café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.yaml, line 2, column 6: not UTF-8 text \(byte 0xe9\)"):
        load_config(path)


def test_dataclass_checks_values_built_in_python():
    with pytest.raises(ConfigError, match="'ols.n_boot' must be an integer >= 1, got 0"):
        FitConfig().replace(ols={"n_boot": 0})
    with pytest.raises(ConfigError, match="'seed'"):
        FitConfig(seed=True)


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "--seed: must be an integer >= 0 and <= 4294967295, got -1"),
    (["--seed", str(2**32)], "--seed: must be an integer >= 0 and <= 4294967295, got 4294967296"),
    (["--seed", "x"], "--seed: must be an integer >= 0, got 'x'"),
])
def test_bad_seed_on_the_command_line_exits_2(tmp_path, capsys, args, message):
    from xltstats.fit import main

    with pytest.raises(SystemExit) as info:  # argparse's usage error
        main([*args, "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text", ["mixed: {reml: maybe}\n", "report: nope\n", "ranking: {k: three}\n"])
def test_bad_config_through_the_cli_exits_2_naming_file_and_key(tmp_path, capsys, text):
    from xltstats.fit import main

    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["--config", str(path), "--out", str(tmp_path / "o")]) == 2
    assert str(path) in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o*"))


def test_cli_without_traceback_in_a_subprocess(tmp_path):
    done = subprocess.run([sys.executable, "-m", "xltstats.fit", "--seed", "-1", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
