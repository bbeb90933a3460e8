"""Reading your own (inputs, targets) files and splitting them."""

import gzip
import json

import pytest

from t5lab.data.downstream.splits import split_of
from t5lab.data.downstream.text_pairs import read_text_pairs, text_pairs_by_split
from t5lab.errors import UserError


def _write_jsonl(path, n, *, start=0):
    lines = [
        json.dumps({"inputs": f"question {i}", "targets": f"answer {i}"})
        for i in range(start, start + n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_jsonl_tsv_and_gzip_read_the_same_pairs(tmp_path):
    jsonl = _write_jsonl(tmp_path / "a.jsonl", 3)
    tsv = tmp_path / "a.tsv"
    tsv.write_text("inputs\ttargets\n" + "".join(f"question {i}\tanswer {i}\n" for i in range(3)))
    gz = tmp_path / "a.tsv.gz"
    gz.write_bytes(gzip.compress(tsv.read_bytes()))

    def pairs(path):
        return [(e["inputs"], e["targets"]) for e in read_text_pairs(str(path))]

    assert (
        pairs(jsonl)
        == pairs(tsv)
        == pairs(gz)
        == [(f"question {i}", f"answer {i}") for i in range(3)]
    )
    assert read_text_pairs(jsonl)[1]["id"] == f"{jsonl}:2"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"inputs": "a", "targets": "b"}\n{oops\n', r"bad.jsonl:2 is not valid JSON"),
        ("bad.jsonl", '{"inputs": "a"}\n', r"bad.jsonl:1 needs a string 'targets' field"),
        ("bad.tsv", "a\tb\tc\n", r"bad.tsv:1 has 3 tab-separated fields"),
        ("bad.csv", "a,b\n", r"expected a .jsonl or .tsv file"),
        ("empty.tsv", "\n\n", r"contains no examples"),
    ],
)
def test_bad_files_are_one_line_user_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        read_text_pairs(str(path))


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_text_pairs(str(tmp_path / "nope.jsonl"))


def test_splits_without_files_are_hashed_out_of_train(tmp_path):
    train = _write_jsonl(tmp_path / "train.jsonl", 200)
    splits = text_pairs_by_split(train_path=train)
    for split, examples in splits.items():
        assert examples and all(split_of(e["inputs"]) == split for e in examples)
    assert sum(len(v) for v in splits.values()) == 200

    validation = _write_jsonl(tmp_path / "validation.jsonl", 5, start=1000)
    with_file = text_pairs_by_split(train_path=train, validation_path=validation)
    assert [e["inputs"] for e in with_file["validation"]] == [
        f"question {i}" for i in range(1000, 1005)
    ]
    assert with_file["test"] == splits["test"]
    assert len(with_file["train"]) == len(splits["train"]) + len(splits["validation"])


def test_a_split_left_empty_is_a_user_error(tmp_path):
    train = _write_jsonl(tmp_path / "train.jsonl", 2)
    with pytest.raises(UserError, match="split of .* is empty"):
        text_pairs_by_split(train_path=train)
