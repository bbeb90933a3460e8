"""`t5lab` end to end: train / eval / infer / vocab train, and one-line errors for bad input."""

import json

import pytest

from t5lab.cli import EXIT_USER_ERROR, main
from t5lab.data.corpus import sotu_documents
from t5lab.data.vocab import get_vocabulary
from tests.conftest import FIXTURES

MICRO = f"--gin_file={FIXTURES / 'micro.gin'}"


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("t5lab: error: ")
    return err[0]


def test_train_eval_infer_round_trip(tmp_path, capsys):
    model_dir = f"--gin.MODEL_DIR={tmp_path}"
    assert main(["train", MICRO, model_dir, "--gin.TRAIN_STEPS=4", "--quiet"]) == 0
    assert "steps 0 -> 4" in capsys.readouterr().out
    config = (tmp_path / "config.gin").read_text()
    assert "train.batch_size = %BATCH_SIZE" in config and "T5Config.emb_dim = 32" in config

    assert main(["eval", MICRO, model_dir]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 4 and 0 < result["loss"] < 20

    text = "The state of the union is strong."
    assert main(["infer", MICRO, model_dir, "--text", text, "--max_decode_length", "8"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["input"] == text and isinstance(line["output"], str)


def test_vocab_train_writes_a_usable_model(tmp_path, capsys):
    corpus = tmp_path / "speeches.jsonl"
    speeches = sotu_documents(split="validation")[:3]
    corpus.write_text("\n".join(json.dumps({"text": doc["text"]}) for doc in speeches))
    prefix = tmp_path / "spm"
    args = ["vocab", "train", "--input", str(corpus), "--model_prefix", str(prefix)]
    assert main([*args, "--vocab_size", "400"]) == 0  # 256 of them byte pieces
    out = capsys.readouterr().out
    assert "500 ids" in out and "model vocab_size 512" in out
    vocabulary = get_vocabulary(spm_path=f"{prefix}.model")
    for text in ("the people of the union", "¿El Señor? not_equivalent"):  # bytes, no <unk>
        assert vocabulary.decode(vocabulary.encode(text)) == text
    args[-1] = str(tmp_path / "no_bytes")  # a new path: seqio caches models by path
    assert main([*args, "--vocab_size", "300", "--no_byte_fallback"]) == 0
    vocabulary = get_vocabulary(spm_path=f"{tmp_path / 'no_bytes'}.model")
    assert vocabulary.unk_id in vocabulary.encode("Señor")


@pytest.mark.parametrize(
    "flags, expected",
    [
        (
            ["--gin.train.batchsize=4"],
            "'train' has no parameter 'batchsize' (did you mean 'batch_size'",
        ),
        (["--gin.trian.batch_size=4"], "unknown gin configurable 'trian' (did you mean 'train'"),
        (
            ["--gin.MIXTURE_OR_TASK_NAME=sotu_span_corupton"],
            "unknown task or mixture 'sotu_span_corupton' (did you mean 'sotu_span_corruption'",
        ),
        (["--gin.TASK_FEATURE_LENGTHS={'inputs': 2, 'targets': 4}"], "inputs"),
        (["--gin.MODEL_DIR=/proc/t5lab_cannot_write_here"], "is not writable"),
    ],
)
def test_bad_configuration_gives_one_clear_line(tmp_path, capsys, flags, expected):
    args = ["train", MICRO, f"--gin.MODEL_DIR={tmp_path}", "--quiet", *flags]
    assert main(args) == EXIT_USER_ERROR
    assert expected in _error_line(capsys)


def test_missing_gin_file_suggests_the_closest(capsys):
    assert main(["train", "--gin_file=gin/quickstrat.gin"]) == EXIT_USER_ERROR
    assert "gin file not found: gin/quickstrat.gin (did you mean 'quickstart.gin'" in _error_line(
        capsys
    )


def test_unset_model_dir_is_named(capsys):
    assert (
        main(["train", "--gin_file=gin/runs/pretrain.gin", "--gin_file=models/t5_1_1_tiny.gin"])
        == EXIT_USER_ERROR
    )
    assert "MODEL_DIR" in _error_line(capsys)


def test_own_corpus_errors(tmp_path, capsys):
    own = "--gin_file=gin/runs/own_corpus.gin"
    base = ["train", MICRO, own, f"--gin.MODEL_DIR={tmp_path / 'run'}", "--quiet"]
    missing = str(tmp_path / "nowhere" / "*.txt")
    assert main([*base, f"--gin.CORPUS_PATTERNS=['{missing}']"]) == EXIT_USER_ERROR
    assert "nowhere" in _error_line(capsys)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert main([*base, f"--gin.CORPUS_PATTERNS=['{empty}']"]) == EXIT_USER_ERROR
    assert "no text" in _error_line(capsys)


def test_own_corpus_trains(tmp_path, capsys):
    corpus = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"text": f"Document {i} says that the river runs to the sea. " * 8})
        for i in range(60)
    ]
    corpus.write_text("\n".join(lines))
    args = [
        "train",
        MICRO,
        "--gin_file=gin/runs/own_corpus.gin",
        f"--gin.MODEL_DIR={tmp_path / 'run'}",
        f"--gin.CORPUS_PATTERNS=['{corpus}']",
        "--gin.TRAIN_STEPS=2",
        "--quiet",
    ]
    assert main(args) == 0, capsys.readouterr().err
    assert "steps 0 -> 2" in capsys.readouterr().out
