"""The optional ``condition`` column: canonical text, part of the row key, checked against the
structured columns beside it; tables without it are read as before."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from xltstats.errors import ConfigError, InputError
from xltstats.results import (
    format_condition,
    key_columns,
    parse_condition,
    read_results,
    validate_results,
    write_results,
)


def table(conditions, **extra) -> pd.DataFrame:
    n = len(conditions)
    frame = pd.DataFrame({
        "model": ["mbert"] * n, "task": ["udpos"] * n, "source": ["ar"] * n, "target": ["de"] * n,
        "score": [0.5 + 0.01 * i for i in range(n)], "metric": ["accuracy"] * n,
        "n_source_examples": [800] * n, "n_target_examples": [0] * n, "seed": [1] * n,
        "condition": conditions,
    })
    for column, values in extra.items():
        frame[column] = values
    return frame


def test_canonical_text_sorts_pairs_and_strips_spaces():
    assert format_condition("mlm_steps=100; method = mlm") == "method=mlm;mlm_steps=100"
    assert format_condition({"lambda": 0.5, "la": "ara:0.50+eng:0.50", "fused": True}) == \
        "fused=true;la=ara:0.50+eng:0.50;lambda=0.5"
    assert format_condition({"mlm_steps": 100.0}) == "mlm_steps=100"
    assert parse_condition("reinit=0-1") == {"reinit": "0-1"}
    assert parse_condition(None) == {} and parse_condition("") == {}
    for bad, reason in [("mlm_steps", "not key=value"), ("a=1;;b=2", "empty part"),
                        ("a=1;a=2", "given twice"), ("1a=x", "identifier"), ("a=", "non-empty")]:
        with pytest.raises(ValueError, match=reason):
            parse_condition(bad)


def test_condition_joins_the_row_key():
    frame = table(["mlm_steps=100;method=mlm", "method=mlm; mlm_steps=10", None])
    result = validate_results(frame)
    assert result["condition"].tolist()[:2] == ["method=mlm;mlm_steps=100", "method=mlm;mlm_steps=10"]
    assert pd.isna(result["condition"].iloc[2])
    assert key_columns(result)[-1] == "condition"
    assert "condition" not in key_columns(result.drop(columns="condition"))
    # the same condition written in another order is the same key
    again = table(["mlm_steps=10;method=mlm", "method=mlm;mlm_steps=10"])
    with pytest.raises(InputError, match="duplicate row key") as caught:
        validate_results(again, file="runs.csv")
    assert caught.value.row == 2 and "condition='method=mlm;mlm_steps=10'" in str(caught.value)
    # two rows without a condition are still duplicates of each other
    with pytest.raises(InputError, match="duplicate row key"):
        validate_results(table([None, None]))


def test_table_without_condition_is_unchanged():
    frame = table([None]).drop(columns="condition")
    result = validate_results(frame)
    assert "condition" not in result.columns
    with pytest.raises(InputError, match="duplicate row key"):
        validate_results(pd.concat([frame, frame], ignore_index=True))


def test_structured_columns_must_agree_with_the_condition():
    frame = table(["mlm_steps=100", "mlm_steps=10", "compose=stack"],
                  mlm_steps=[100, 11, None], compose=[None, None, "stack"])
    with pytest.raises(InputError, match="'mlm_steps' is 11 but the condition says mlm_steps=10") \
            as caught:
        validate_results(frame, file="runs.csv")
    assert caught.value.row == 2 and caught.value.column == "mlm_steps"
    frame.loc[1, "mlm_steps"] = 10
    validate_results(frame)
    frame.loc[2, "compose"] = "fuse"
    with pytest.raises(InputError, match="'compose' is fuse"):
        validate_results(frame)


def test_bad_condition_names_file_row_and_column(tmp_path):
    path = tmp_path / "runs.csv"
    table(["mlm_steps=1", "mlm_steps"]).to_csv(path, index=False)
    with pytest.raises(InputError) as caught:
        read_results(path)
    assert caught.value.row == 2 and caught.value.column == "condition"
    assert "runs.csv" in str(caught.value)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_round_trip(tmp_path, suffix):
    frame = validate_results(table(["la=ara:0.70+eng:0.30", "la=ara:1.00", None],
                                   **{"lambda": [0.7, 1.0, None]}))
    path = write_results(frame, tmp_path / f"runs{suffix}")
    again = read_results(path)
    assert again["condition"].tolist()[:2] == ["la=ara:0.70+eng:0.30", "la=ara:1.00"]
    assert pd.isna(again["condition"].iloc[2])


def test_jsonl_condition_as_object(tmp_path):
    base = table([None]).drop(columns="condition").iloc[0].to_dict()
    lines = [json.dumps({**base, "seed": 1, "condition": {"mlm_steps": 10, "method": "mlm"}}),
             json.dumps({**base, "seed": 1, "condition": "method=mlm;mlm_steps=100"})]
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert read_results(path)["condition"].tolist() == ["method=mlm;mlm_steps=10",
                                                        "method=mlm;mlm_steps=100"]


def test_fit_refuses_to_pool_conditions():
    from xltstats.pipeline.run import check_one_condition as _check_one_condition

    _check_one_condition(table([None]).drop(columns="condition"))
    _check_one_condition(table(["mlm_steps=1"]))
    with pytest.raises(ConfigError, match="2 experimental conditions.*subset"):
        _check_one_condition(table(["mlm_steps=1", None]))
