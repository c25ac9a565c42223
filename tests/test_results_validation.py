"""Validation of results tables: every bad input names the file, the row and the column."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.results import (
    KEY_COLUMNS,
    METRICS,
    REQUIRED_COLUMNS,
    read_results,
    validate_results,
)

HEADER = ",".join(REQUIRED_COLUMNS)


def table(**changes) -> pd.DataFrame:
    """A small valid table: XLM-R POS, English -> four targets (0-100 accuracy)."""
    frame = pd.DataFrame({
        "model": ["xlmr"] * 4,
        "task": ["pos"] * 4,
        "source": ["en", "en", "en", "en"],
        "target": ["de", "nl", "pt_BR", "zh-Hant"],
        "score": [88.1, 89.9, 86.0, 62.5],
        "metric": ["accuracy"] * 4,
        "n_source_examples": [12543, 12543, 12543, 12543],
        "n_target_examples": [0, 0, 0, 0],
        "seed": [1, 1, 1, 1],
        "word_overlap": [0.3, 0.4, 0.2, 0.01],
    })
    for column, values in changes.items():
        frame[column] = values
    return frame


def write_csv(tmp_path, lines, name="runs.csv"):
    path = tmp_path / name
    path.write_text("\n".join([HEADER] + lines) + "\n", encoding="utf-8")
    return path


ROW = "xlmr,pos,en,{target},{score},accuracy,100,0,{seed}"


def error_of(call, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as caught:
        call(*args, **kwargs)
    return caught.value


# --------------------------------------------------------------------------- valid input

def test_valid_table_is_normalised():
    result = validate_results(table(), file="t.csv")
    assert result["source"].tolist() == ["eng"] * 4
    assert result["target"].tolist() == ["deu", "nld", "por", "zho"]
    assert result["source_code"].tolist() == ["en"] * 4
    assert result["target_code"].tolist() == ["de", "nl", "pt_BR", "zh-Hant"]
    assert result["score"].dtype == np.float64
    assert result["seed"].dtype == np.int64
    assert result["n_target_examples"].dtype == np.int64
    assert str(result["n_source_examples"].dtype) == "Int64"
    assert result["word_overlap"].tolist() == [0.3, 0.4, 0.2, 0.01]  # extra column kept
    assert result.attrs["score_scales"] == {"accuracy": "0-100"}


def test_input_is_not_mutated():
    original = table(seed=["1", "1", "1", "1"], metric=["Accuracy"] * 4)
    snapshot = original.copy(deep=True)
    validate_results(original, rescale=True)
    pd.testing.assert_frame_equal(original, snapshot)


def test_rows_keep_their_order():
    frame = table(target=["zh", "de", "af", "nl"])
    assert validate_results(frame)["target_code"].tolist() == ["zh", "de", "af", "nl"]


def test_validation_is_idempotent():
    once = validate_results(table())
    twice = validate_results(once)
    pd.testing.assert_frame_equal(once, twice)
    assert twice["target_code"].tolist() == ["de", "nl", "pt_BR", "zh-Hant"]


def test_metric_aliases_and_case():
    result = validate_results(table(metric=["ACC", "accuracy", " Accuracy", "acc"]))
    assert set(result["metric"]) == {"accuracy"}


def test_unknown_n_source_examples_is_allowed():
    result = validate_results(table(n_source_examples=[None, 5, None, 7]))
    assert result["n_source_examples"].isna().tolist() == [True, False, True, False]


def test_numeric_strings_are_coerced():
    result = validate_results(table(score=["88.1", "89.9", "86", "62.5"], seed=["1", "2", "3", "4"]))
    assert result["score"].tolist() == [88.1, 89.9, 86.0, 62.5]
    assert result["seed"].tolist() == [1, 2, 3, 4]


def test_multi_source_languages_are_normalised():
    frame = table(source=["mul", "mul", "en", "en"],
                  source_languages=['{"en": 1000, "de": 500}', {"ger": 500, "eng": 1000}, None,
                                    None])
    result = validate_results(frame)
    assert result["source_languages"].iloc[0] == '{"deu": 500, "eng": 1000}'
    assert result["source_languages"].iloc[1] == '{"deu": 500, "eng": 1000}'
    assert result["source"].tolist() == ["mul", "mul", "eng", "eng"]
    assert pd.isna(result["source_languages"].iloc[2])


def test_source_languages_is_part_of_the_key():
    frame = table(source=["mul"] * 4, target=["de"] * 4,
                  source_languages=['{"en": 1}', '{"en": 2}', '{"fr": 1}', '{"en": 1, "fr": 1}'])
    assert len(validate_results(frame)) == 4


def test_key_columns_and_metric_table():
    assert KEY_COLUMNS == ("model", "task", "source", "target", "n_target_examples", "seed")
    assert METRICS["accuracy"] == (0.0, 1.0) and METRICS["bleu"] == (0.0, 100.0)
    assert {"f1", "macro_f1", "em", "chrf", "spbleu", "ndcg", "las", "uas", "mrr"} <= set(METRICS)


def test_large_table_is_fast():
    rng = np.random.default_rng(1)
    n = 100_000
    codes = ["en", "de", "fr", "zh", "ar", "hi", "sw", "pt_BR", "zh-Hant", "ja", "nb", "pcm"]
    frame = pd.DataFrame({
        "model": rng.choice(["xlmr", "mbert"], n), "task": "pos",
        "source": rng.choice(codes, n), "target": rng.choice(codes, n),
        "score": rng.uniform(0, 1, n), "metric": "accuracy", "n_source_examples": 1000,
        "n_target_examples": np.arange(n), "seed": 0,
    })
    validate_results(frame.head(10))
    start = time.perf_counter()
    result = validate_results(frame)
    elapsed = time.perf_counter() - start
    assert len(result) == n
    assert elapsed < 3.0, f"100k rows took {elapsed:.2f} s"


@pytest.mark.slow
def test_half_a_million_rows():
    rng = np.random.default_rng(2)
    n = 500_000
    codes = ["en", "de", "fr", "zh", "ar", "hi", "sw", "pt_BR", "zh-Hant", "ja", "nb", "pcm"]
    frame = pd.DataFrame({
        "model": rng.choice(["xlmr", "mbert", "mt5"], n), "task": rng.choice(["pos", "ner"], n),
        "source": rng.choice(codes, n), "target": rng.choice(codes, n),
        "score": rng.uniform(0, 100, n), "metric": "f1", "n_source_examples": 1000,
        "n_target_examples": np.arange(n), "seed": rng.integers(0, 5, n),
    })
    start = time.perf_counter()
    validate_results(frame)
    assert time.perf_counter() - start < 10.0


# --------------------------------------------------------------------------- bad input

def test_empty_table(tmp_path):
    path = write_csv(tmp_path, [])
    error = error_of(read_results, path)
    assert error.file == str(path) and "no data rows" in str(error)


def test_empty_dataframe():
    error = error_of(validate_results, table().iloc[0:0], file="x.csv")
    assert "x.csv" in str(error) and "no data rows" in str(error)


def test_missing_required_column(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("model,task,source,target,Score,metric,n_source_examples,n_target_examples\n"
                    "xlmr,pos,en,de,0.5,accuracy,1,0\n")
    error = error_of(read_results, path)
    assert error.file == str(path)
    assert error.column == "score"
    assert "'score' (is it 'Score'?)" in str(error) and "'seed'" in str(error)


def test_non_numeric_score(tmp_path):
    path = write_csv(tmp_path, [ROW.format(target="de", score=0.5, seed=1),
                                ROW.format(target="nl", score="abc", seed=1)])
    error = error_of(read_results, path)
    assert (error.file, error.row, error.column) == (str(path), 2, "score")
    assert "not a number: 'abc'" in str(error)


def test_missing_score_is_a_row_to_predict(tmp_path):
    path = write_csv(tmp_path, [ROW.format(target="de", score="", seed=1), ROW.format(target="nl", score=0.5, seed=1)])
    table = read_results(path)
    assert np.isnan(table["score"].iloc[0]) and table["score"].iloc[1] == 0.5 and table["target"].iloc[0] == "deu"
    infinite = write_csv(tmp_path, [ROW.format(target="de", score="inf", seed=1)])
    error = error_of(read_results, infinite)
    assert (error.row, error.column) == (1, "score") and "finite" in str(error)


def test_score_above_range(tmp_path):
    path = write_csv(tmp_path, [ROW.format(target="de", score=50, seed=1),
                                ROW.format(target="nl", score=150, seed=1)])
    error = error_of(read_results, path)
    assert (error.file, error.row, error.column) == (str(path), 2, "score")
    assert "outside the range of metric 'accuracy'" in str(error)


def test_negative_bleu():
    frame = table(metric=["bleu"] * 4, score=[20.0, 30.0, -1.0, 10.0])
    error = error_of(validate_results, frame, file="mt.csv")
    assert (error.file, error.row, error.column) == ("mt.csv", 3, "score")
    assert "'bleu'" in str(error)


def test_mixed_scales_within_a_metric():
    frame = table(model=["xlmr", "xlmr", "mbert", "mbert"], score=[88.1, 89.9, 0.86, 0.62])
    error = error_of(validate_results, frame, file="t.csv")
    assert (error.file, error.row, error.column) == ("t.csv", 3, "score")
    assert "mixes 0-1 and 0-100" in str(error) and "row 1" in str(error)
    assert "rescale=True" in str(error)


def test_rescale_converts_to_the_native_scale_and_records_it():
    frame = table(model=["xlmr", "xlmr", "mbert", "mbert"], score=[88.1, 89.9, 0.86, 0.62])
    result = validate_results(frame, rescale=True)
    assert result["score"].tolist() == pytest.approx([0.881, 0.899, 0.86, 0.62])
    assert result["score_original"].tolist() == [88.1, 89.9, 0.86, 0.62]
    assert result.attrs["rescaled"] == {"accuracy": 2}
    assert result.attrs["score_scales"] == {"accuracy": "0-1"}


def test_rescale_puts_bleu_on_0_100():
    frame = table(metric=["bleu"] * 4, model=["a", "a", "b", "b"], score=[0.25, 0.3, 25.0, 31.0])
    result = validate_results(frame, rescale=True)
    assert result["score"].tolist() == pytest.approx([25.0, 30.0, 25.0, 31.0])
    assert result.attrs["score_scales"] == {"bleu": "0-100"}


def test_scales_of_different_metrics_are_independent():
    frame = table(metric=["accuracy", "accuracy", "bleu", "bleu"], score=[0.9, 0.8, 25.0, 30.0])
    result = validate_results(frame)
    assert result.attrs["score_scales"] == {"accuracy": "0-1", "bleu": "0-100"}


def test_unknown_language_code(tmp_path):
    path = write_csv(tmp_path, [ROW.format(target="de", score=0.5, seed=1),
                                ROW.format(target="nl", score=0.5, seed=1),
                                ROW.format(target="dex", score=0.5, seed=1)])
    error = error_of(read_results, path)
    assert (error.file, error.row, error.column) == (str(path), 3, "target")
    assert "'dex'" in str(error) and "deu (German)" in str(error)


def test_ambiguous_language_code():
    error = error_of(validate_results, table(source=["en", "bh", "en", "en"]), file="t.csv")
    assert (error.row, error.column) == (2, "source")
    assert "ambiguous" in str(error) and "bho, mai, mag" in str(error)


def test_target_cannot_be_multilingual():
    error = error_of(validate_results, table(target=["de", "nl", "mul", "zh"]))
    assert (error.row, error.column) == (3, "target")


def test_multi_source_without_source_languages_column():
    error = error_of(validate_results, table(source=["en", "mul", "en", "en"]), file="t.csv")
    assert (error.row, error.column) == (2, "source") and "source_languages" in str(error)


def test_multi_source_with_empty_source_languages():
    frame = table(source=["en", "en", "mul", "en"], source_languages=[None, None, "", None])
    error = error_of(validate_results, frame)
    assert (error.row, error.column) == (3, "source_languages")


def test_source_languages_not_json():
    frame = table(source=["mul"] * 4, source_languages=['{"en": 1}', "en:1", '{"de": 1}', '{"fr": 1}'])
    error = error_of(validate_results, frame, file="t.csv")
    assert (error.row, error.column) == (2, "source_languages")
    assert "not a JSON object" in str(error)


def test_source_languages_bad_code():
    frame = table(source=["mul"] * 4,
                  source_languages=['{"en": 1}', '{"de": 1}', '{"fr": 1}', '{"xq": 1}'])
    error = error_of(validate_results, frame)
    assert (error.row, error.column) == (4, "source_languages") and "'xq'" in str(error)


def test_source_languages_bad_count():
    frame = table(source=["mul"] * 4,
                  source_languages=['{"en": 1.5}', '{"de": 1}', '{"fr": 1}', '{"it": 1}'])
    error = error_of(validate_results, frame)
    assert (error.row, error.column) == (1, "source_languages") and "whole number" in str(error)


def test_duplicate_keys_name_both_rows(tmp_path):
    path = write_csv(tmp_path, [ROW.format(target="de", score=0.5, seed=1),
                                ROW.format(target="nl", score=0.5, seed=1),
                                ROW.format(target="deu", score=0.6, seed=1)])
    error = error_of(read_results, path)
    assert error.file == str(path) and error.row == 3
    assert "duplicate row key" in str(error) and "same key as row 1" in str(error)
    assert "target codes 'de' and 'deu' both mean 'deu'" in str(error)
    assert "model" in error.column and "seed" in error.column


def test_norwegian_aliases_collide_as_duplicates():
    frame = table(target=["no", "nb", "de", "nl"])
    error = error_of(validate_results, frame)
    assert error.row == 2 and "same key as row 1" in str(error)


def test_different_seeds_are_not_duplicates(tmp_path):
    path = write_csv(tmp_path, [ROW.format(target="de", score=0.5, seed=1),
                                ROW.format(target="de", score=0.6, seed=2)])
    assert len(read_results(path)) == 2


def test_missing_value_in_key_column(tmp_path):
    path = write_csv(tmp_path, [ROW.format(target="de", score=0.5, seed=1),
                                ROW.format(target="nl", score=0.5, seed="")])
    error = error_of(read_results, path)
    assert (error.file, error.row, error.column) == (str(path), 2, "seed")
    assert "missing" in str(error)


@pytest.mark.parametrize("column", ["model", "task", "source", "target", "n_target_examples"])
def test_nan_in_each_key_column(column):
    values = table()[column].astype(object).tolist()
    values[2] = None
    error = error_of(validate_results, table(**{column: values}), file="t.parquet")
    assert (error.file, error.row, error.column) == ("t.parquet", 3, column)


def test_missing_metric():
    error = error_of(validate_results, table(metric=["accuracy", None, "accuracy", "accuracy"]))
    assert (error.row, error.column) == (2, "metric")


def test_unknown_metric_suggests():
    error = error_of(validate_results, table(metric=["accuracy", "acuracy", "accuracy", "accuracy"]))
    assert (error.row, error.column) == (2, "metric") and "did you mean accuracy" in str(error)


def test_fractional_seed():
    error = error_of(validate_results, table(seed=[1, 1.5, 1, 1]))
    assert (error.row, error.column) == (2, "seed") and "whole number" in str(error)


def test_negative_example_count():
    error = error_of(validate_results, table(n_source_examples=[10, 10, -3, 10]))
    assert (error.row, error.column) == (3, "n_source_examples")


def test_blank_lines_count_as_rows(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("\n".join([HEADER, ROW.format(target="de", score=0.5, seed=1), "",
                               ROW.format(target="xx", score=0.5, seed=1)]) + "\n")
    error = error_of(read_results, path)
    assert (error.row, error.column) == (3, "target")


def test_language_code_na_is_not_missing(tmp_path):
    # "NA" is a missing-value marker for pandas but Nauruan for us.
    path = write_csv(tmp_path, [ROW.format(target="NA", score=0.5, seed=1)])
    assert read_results(path)["target"].tolist() == ["nau"]


def test_error_message_format(tmp_path):
    path = write_csv(tmp_path, [ROW.format(target="de", score="x", seed=1)])
    assert str(error_of(read_results, path)).startswith(f"{path}, row 1, column 'score': ")


def test_index_is_kept_and_rows_are_positions():
    frame = table().set_axis([7, 7, 3, 1])
    assert validate_results(frame).index.tolist() == [7, 7, 3, 1]
    frame.iloc[2, frame.columns.get_loc("target")] = "xx"
    assert error_of(validate_results, frame).row == 3
