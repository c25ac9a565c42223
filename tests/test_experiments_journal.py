"""Journals survive kills; metrics checked by hand."""
import json

import pandas as pd
import pytest

from xltstats.errors import InputError
from xltstats.experiments.journal import Journal, read_all, read_journal, write_table
from xltstats.experiments.metrics import iob2_spans, span_f1, token_accuracy


def row(key, score=1.0):
    return {"row_key": key, "model": "m", "task": "xnli", "source": "eng", "target": "deu",
            "score": score, "metric": "accuracy", "n_source_examples": 10, "n_target_examples": 0,
            "seed": 1, "config_hash": "h", "run_id": "r"}


def test_partial_last_line_ignored_and_cut_before_appending(tmp_path):
    path = tmp_path / "journal" / "job.jsonl"
    j = Journal(path)
    j.append(row("a"))
    j.append(row("a"))  # same key: not written twice
    with open(path, "ab") as fh:
        fh.write(json.dumps(row("b"))[:25].encode())  # killed mid-write
    assert [r["row_key"] for r in read_journal(path)] == ["a"]
    j2 = Journal(path)  # restart
    assert j2.keys == {"a"}
    j2.append(row("b", 2.0))
    assert [r["row_key"] for r in read_journal(path)] == ["a", "b"]
    assert path.read_bytes().endswith(b"\n")


def test_corrupt_middle_line_is_an_error_naming_the_row(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps(row("a")) + "\n{broken\n" + json.dumps(row("b")) + "\n")
    with pytest.raises(InputError, match=r"j.jsonl: line 2: corrupt journal line"):
        read_journal(path)


def test_read_all_keeps_one_copy_of_a_row_found_in_two_shards(tmp_path):
    for name in ("a", "b"):
        Journal(tmp_path / "journal" / f"{name}.jsonl").append(row("same", 1.0))
    rows = read_all(tmp_path)
    assert list(rows) == ["same"] and rows["same"]["score"] == 1.0


def test_read_all_refuses_two_different_rows_with_one_key(tmp_path):
    for name, score in (("a", 1.0), ("b", 2.0)):
        Journal(tmp_path / "journal" / f"{name}.jsonl").append(row("same", score))
    with pytest.raises(InputError, match=r"b.jsonl: line 1: row_key same was already written in .*a.jsonl, "
                                         r"line 1, with other values \(score: 1.0 vs 2.0\)"):
        read_all(tmp_path)


def test_table_written_sorted_and_atomically(tmp_path):
    out = tmp_path / "results.csv"
    rows = [dict(row("k2"), target="fra"), row("k1")]
    write_table(rows, out)
    df = pd.read_csv(out)
    assert list(df.columns[:11]) == ["model", "task", "source", "target", "score", "metric",
                                     "n_source_examples", "n_target_examples", "seed",
                                     "config_hash", "run_id"]
    assert list(df["target"]) == ["deu", "fra"]
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]  # no temporary file left


def test_span_f1_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-LOC"]]
    # gold spans 3, predicted 4, correct 2 -> P = 1/2, R = 2/3, F1 = 4/7
    assert span_f1(gold, pred) == pytest.approx(4 / 7)
    assert iob2_spans(["I-LOC", "I-LOC", "B-LOC"]) == {("LOC", 0, 2), ("LOC", 2, 3)}
    assert token_accuracy([[1, 2, 3], [4]], [[1, 0, 3], [4]]) == 0.75
