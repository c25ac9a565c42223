"""Language arithmetic analysis: the *_results.json loader, validation-only selection, curves with
bands, gains with a paired bootstrap on planted curves."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.studies.arithmetic import curves, gains, read_la_results, select

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "studies" / "langarith"
PATTERN = r"langarith/(?P<target>[a-z]+)/(?P<a1>[a-z]+)_(?P<a2>[a-z]+)/seed(?P<seed>\d+)/"


def fixture_files():
    return sorted(FIXTURES.rglob("*_results.json"))


def test_loader_reads_la_results_json():
    r = read_la_results(fixture_files(), model="xlmr", path_pattern=PATTERN)
    assert len(r) == 6 and set(r["split"]) == {"validation", "test"}
    assert set(r["target"]) == {"ara"} and set(r["adapter_b"]) == {"swa"} and set(r["seed"]) == {42}
    assert "la=eng:0.5+swa:0.5;split=test" in set(r["condition"])
    assert r.loc[r["condition"] == "la=eng:0.5+swa:0.5;split=test", "score"].item() == 0.455
    sel = select(r)
    assert sel["selected_lambda"].tolist() == [0.5] and sel["selected_on"].tolist() == ["val_target"]
    g = gains(r, n_boot=100)
    assert g["gain"].round(6).tolist() == [0.018]  # 0.455 - 0.437 (lambda 1 = English alone)
    assert np.isnan(g["ci_low"].iloc[0])  # one seed, no per-example counts: no interval


def test_loader_errors_name_the_file(tmp_path):
    bad = tmp_path / "test_lang_ar_results.json"
    bad.write_text(json.dumps({"test_f1": 0.5}))
    with pytest.raises(InputError, match="no merge weights") as caught:
        read_la_results([bad], model="x", task="ner", adapters=("en", "sw"), seed=1)
    assert str(bad) in str(caught.value)
    bad.write_text(json.dumps({"test_f1": 0.5, "test_w1": 0.5, "test_w2": 0.5}))
    with pytest.raises(InputError, match="no seed"):
        read_la_results([bad], model="x", task="ner", adapters=("en", "sw"))
    assert read_la_results([bad], model="x", task="ner", adapters=("en", "sw"), seed=1)["target"].tolist() \
        == ["ara"]


def test_selection_never_reads_test_rows():
    r = read_la_results(fixture_files(), model="xlmr", path_pattern=PATTERN)
    test_only = r[r["split"] == "test"]
    with pytest.raises(InputError, match="validation"):
        select(test_only)


def planted_sweep(val_peak=0.3, test_peak=0.7, gain=0.1, seeds=(1, 2, 3), n=400):
    """s(lambda) = 0.5 + gain * (1 - ((lambda - peak) / (1 - peak))^2) clipped; per-example
    correct/total counts drawn from it."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in seeds:
        for split, peak in (("validation", val_peak), ("test", test_peak)):
            for lam in np.round(np.linspace(0, 1, 11), 1):
                p = 0.5 + gain * max(0.0, 1 - ((lam - peak) / max(peak, 1 - peak)) ** 2)
                if split == "test" and lam == 1.0:
                    p = 0.5
                correct = rng.random(n) < p
                stats = [[int(c), 1] for c in correct]
                rows.append(dict(model="m", task="pos", source="eng", target="por", seed=seed,
                                 score=float(correct.mean()), metric="accuracy",
                                 n_source_examples=100, n_target_examples=0,
                                 condition=f"la=eng:{lam:g}+spa:{1 - lam:.6g};split={split}",
                                 example_stats=json.dumps(stats)))
    return pd.DataFrame(rows)


def test_selection_follows_validation_and_gain_interval_covers_truth():
    df = planted_sweep()
    sel = select(df)
    assert sel["selected_lambda"].between(0.1, 0.5).all()  # validation peak 0.3, not test peak 0.7
    g = gains(df, n_boot=400)
    row = g.iloc[0]
    assert row["bootstrap"] == "seeds and test examples (paired)" and row["n_seeds"] == 3
    # true test gain at the selected lambdas: s_test(lambda*) - 0.5
    truth = np.mean([0.1 * max(0.0, 1 - ((lam - 0.7) / 0.7) ** 2) for lam in sel["selected_lambda"]])
    assert row["ci_low"] < truth < row["ci_high"]
    c = curves(df)
    assert len(c) == 11 and (c["band"] == "t over seeds").all()
    assert (c["band_low"] <= c["mean_score"]).all() and (c["mean_score"] <= c["band_high"]).all()
    one = curves(df[df["seed"] == 1])
    assert (one["band"] == "bootstrap over test examples").all()


def test_cli(tmp_path, capsys):
    from xltstats.studies.arithmetic.__main__ import main

    out = tmp_path / "out"
    assert main(["--la-results", *map(str, fixture_files()), "--model", "xlmr", "--path-pattern",
                 PATTERN, "--out", str(out), "--n-boot", "100"]) == 0
    assert "Lambda curves" in (out / "report.html").read_text()
    assert main(["--la-results", str(fixture_files()[0]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no model" in err and "Traceback" not in err
