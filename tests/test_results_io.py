"""Reading and writing results tables in the four formats."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.results import FORMATS, read_results, validate_results, write_results


def validated_table() -> pd.DataFrame:
    frame = pd.DataFrame({
        "model": ["xlm-roberta-base", "xlm-roberta-base", "mt5-small", "mt5-small", "mt5-small"],
        "task": ["udpos", "udpos", "xnli", "xnli", "xnli"],
        "source": ["en", "en", "mul", "de", "de"],
        "target": ["nb", "zh-Hant", "fr", "NA", "pt_BR"],
        "score": [0.9635398836015064, 0.1 + 0.2, 0.75, 0.5, 1.0],
        "metric": ["accuracy"] * 5,
        "n_source_examples": [12543, 12543, None, 1000, 1000],
        "n_target_examples": [0, 0, 10, 100, 100],
        "seed": [1, 2, 3, -1, 0],
        "source_languages": [None, None, '{"en": 1000, "de": 500}', None, None],
        "note": ["ok", "comma, \"quote\"", "tab\there", "ünïcødé", None],
        "overlap": [0.25, np.nan, 1e-300, 3.0, -0.0],
    })
    return validate_results(frame)


@pytest.mark.parametrize("extension", sorted(FORMATS))
def test_round_trip(tmp_path, extension):
    original = validated_table()
    path = tmp_path / f"results{extension}"
    write_results(original, path)
    again = read_results(path)
    pd.testing.assert_frame_equal(again, original)
    assert again["score"].tolist()[1] == 0.1 + 0.2  # full float precision survives
    assert again["target_code"].tolist() == ["nb", "zh-Hant", "fr", "NA", "pt_BR"]
    assert again["source_languages"].iloc[2] == '{"deu": 500, "eng": 1000}'


@pytest.mark.parametrize("extension", sorted(FORMATS))
def test_write_is_deterministic(tmp_path, extension):
    write_results(validated_table(), tmp_path / f"a{extension}")
    write_results(validated_table(), tmp_path / f"b{extension}")
    assert (tmp_path / f"a{extension}").read_bytes() == (tmp_path / f"b{extension}").read_bytes()


def test_csv_and_tsv_text(tmp_path):
    write_results(validated_table(), tmp_path / "r.tsv")
    lines = (tmp_path / "r.tsv").read_text(encoding="utf-8").split("\n")
    assert lines[0].split("\t")[:4] == ["model", "task", "source", "target"]
    assert lines[1].split("\t")[:4] == ["xlm-roberta-base", "udpos", "eng", "nor"]


def test_jsonl_lines_are_json_objects(tmp_path):
    path = write_results(validated_table(), tmp_path / "r.jsonl")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 5
    assert records[0]["source"] == "eng" and records[0]["source_languages"] is None
    assert records[2]["n_source_examples"] is None
    assert records[4]["note"] is None


def test_jsonl_with_nested_source_languages(tmp_path):
    path = tmp_path / "r.jsonl"
    record = {"model": "m", "task": "t", "source": "mul", "target": "de", "score": 0.5,
              "metric": "f1", "n_source_examples": 10, "n_target_examples": 0, "seed": 0,
              "source_languages": {"fr": 5, "en": 5}}
    path.write_text(json.dumps(record) + "\n")
    assert read_results(path)["source_languages"].tolist() == ['{"eng": 5, "fra": 5}']


def test_failed_write_leaves_no_file(tmp_path):
    class Unwritable:
        pass

    frame = pd.DataFrame({"a": [Unwritable()]})
    with pytest.raises(TypeError):
        write_results(frame, tmp_path / "r.jsonl")
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_old_file(tmp_path):
    path = write_results(validated_table(), tmp_path / "r.jsonl")
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_results(pd.DataFrame({"a": [object()]}), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["r.jsonl"]


def test_write_unknown_extension(tmp_path):
    error = pytest.raises(InputError, write_results, validated_table(), tmp_path / "r.xlsx").value
    assert error.file == str(tmp_path / "r.xlsx") and "'.xlsx'" in str(error)


# --------------------------------------------------------------------------- unreadable files

def test_missing_file(tmp_path):
    error = pytest.raises(InputError, read_results, tmp_path / "nope.csv").value
    assert error.file == str(tmp_path / "nope.csv") and "not found" in str(error)


def test_wrong_extension(tmp_path):
    path = tmp_path / "results.xlsx"
    path.write_bytes(b"PK\x03\x04")
    error = pytest.raises(InputError, read_results, path).value
    assert error.file == str(path) and ".csv" in str(error) and ".parquet" in str(error)


def test_folder_instead_of_file(tmp_path):
    folder = tmp_path / "results.csv"
    folder.mkdir()
    assert "folder" in str(pytest.raises(InputError, read_results, folder).value)


def test_empty_file(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("")
    error = pytest.raises(InputError, read_results, path).value
    assert error.file == str(path) and "empty" in str(error)


def test_unparseable_csv_names_the_row(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("model,task,source,target,score,metric,n_source_examples,"
                    "n_target_examples,seed\n"
                    "m,t,en,de,0.5,f1,1,0,0\n"
                    "m,t,en,fr,0.5,f1,1,0,0,surplus\n")
    error = pytest.raises(InputError, read_results, path).value
    assert error.file == str(path) and error.row == 2 and "cannot parse" in str(error)


def test_csv_that_is_not_utf8(tmp_path):
    path = tmp_path / "results.csv"
    path.write_bytes(b"model,task\n\xff\xfe,x\n")
    error = pytest.raises(InputError, read_results, path).value
    assert error.file == str(path) and "UTF-8" in str(error)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "results.parquet"
    path.write_bytes(b"this is not parquet at all")
    error = pytest.raises(InputError, read_results, path).value
    assert error.file == str(path) and "Parquet" in str(error)


def test_truncated_parquet(tmp_path):
    path = write_results(validated_table(), tmp_path / "results.parquet")
    path.write_bytes(path.read_bytes()[:-20])
    error = pytest.raises(InputError, read_results, path).value
    assert error.file == str(path) and "Parquet" in str(error)


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "results.jsonl"
    good = json.dumps({"model": "m", "task": "t", "source": "en", "target": "de", "score": 0.5,
                       "metric": "f1", "n_source_examples": 1, "n_target_examples": 0, "seed": 0})
    path.write_text("\n".join([good, "", "{not json"]) + "\n")
    error = pytest.raises(InputError, read_results, path).value
    assert (error.file, error.row) == (str(path), 3) and "not valid JSON" in str(error)


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('[1, 2]\n')
    error = pytest.raises(InputError, read_results, path).value
    assert error.row == 1 and "JSON object" in str(error)


def test_jsonl_rows_are_line_numbers(tmp_path):
    path = tmp_path / "results.jsonl"
    record = {"model": "m", "task": "t", "source": "en", "target": "de", "score": 0.5,
              "metric": "f1", "n_source_examples": 1, "n_target_examples": 0, "seed": 0}
    bad = dict(record, target="xx", seed=1)
    path.write_text("\n".join([json.dumps(record), "", "", json.dumps(bad)]) + "\n")
    error = pytest.raises(InputError, read_results, path).value
    assert (error.row, error.column) == (4, "target")


def test_jsonl_score_of_the_wrong_type(tmp_path):
    path = tmp_path / "results.jsonl"
    record = {"model": "m", "task": "t", "source": "en", "target": "de", "score": 0.5,
              "metric": "f1", "n_source_examples": 1, "n_target_examples": 0, "seed": 0}
    lines = [json.dumps(record), json.dumps(dict(record, seed=1, score="high"))]
    path.write_text("\n".join(lines) + "\n")
    error = pytest.raises(InputError, read_results, path).value
    assert (error.row, error.column) == (2, "score") and "'high'" in str(error)


def test_parquet_rows_are_positions(tmp_path):
    frame = validated_table()
    frame.loc[3, "target"] = "xx"
    path = write_results(frame, tmp_path / "r.parquet")
    error = pytest.raises(InputError, read_results, path).value
    assert (error.file, error.row, error.column) == (str(path), 4, "target")


def test_rescale_flag_is_passed_through(tmp_path):
    frame = pd.DataFrame({"model": ["a", "b"], "task": "t", "source": "en", "target": "de",
                          "score": [0.5, 50.0], "metric": "accuracy", "n_source_examples": 1,
                          "n_target_examples": 0, "seed": [0, 0]})
    path = write_results(frame, tmp_path / "r.csv")
    with pytest.raises(InputError):
        read_results(path)
    assert read_results(path, rescale=True)["score"].tolist() == [0.5, 0.5]
