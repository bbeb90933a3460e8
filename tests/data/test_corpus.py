"""The bundled SOTU corpus, hash splits, and the bring-your-own-files source."""

import gzip
import json
import uuid

import numpy as np
import pytest
import seqio
import tensorflow as tf

from t5lab.data import corpus
from t5lab.errors import UserError


def _texts(source, split, **kwargs):
    return [x["text"].decode() for x in source.get_dataset(split, **kwargs).as_numpy_iterator()]


def test_asset_has_every_speech_with_text():
    train = corpus.sotu_documents(split="train")
    validation = corpus.sotu_documents(split="validation")
    everything = train + validation
    assert len(everything) == 233
    assert all(d["text"].strip() for d in everything)
    assert {d["id"] for d in everything} >= {"1790_george_washington", "2021_joseph_r_biden"}
    assert not any("&quot;" in d["text"] or "\x02" in d["text"] for d in everything)
    assert sum(len(d["text"].split()) for d in everything) > 1_700_000


def test_splits_disjoint_complete_and_stable():
    train_ids = [d["id"] for d in corpus.sotu_documents(split="train")]
    validation_ids = [d["id"] for d in corpus.sotu_documents(split="validation")]
    assert not set(train_ids) & set(validation_ids)
    assert len(set(train_ids) | set(validation_ids)) == 233
    assert validation_ids == [d["id"] for d in corpus.sotu_documents(split="validation")]
    assert 10 <= len(validation_ids) <= 25  # 5% of 233 is 11.65


def test_documents_are_copies_of_the_cache():
    corpus.sotu_documents(split="train")[0]["text"] = "mutated"
    assert corpus.sotu_documents(split="train")[0]["text"] != "mutated"


def test_hash_split_is_stable_and_near_the_percent():
    keys = [f"doc-{i}" for i in range(4000)]
    splits = [corpus.hash_split(k, validation_percent=10) for k in keys]
    assert splits == [corpus.hash_split(k, validation_percent=10) for k in keys]
    assert 0.08 < splits.count("validation") / len(keys) < 0.12
    assert corpus.hash_split("x", validation_percent=0) == "train"
    with pytest.raises(UserError, match="validation_percent"):
        corpus.hash_split("x", validation_percent=100)


def test_unknown_split_is_a_user_error():
    with pytest.raises(UserError, match="did you mean 'validation'"):
        corpus.sotu_documents(split="valdation")


def test_sotu_source_through_a_seqio_task_with_shards():
    source = corpus.sotu_source()
    assert source.num_input_examples("validation") == len(corpus.sotu_documents(split="validation"))
    name = f"test_sotu_{uuid.uuid4().hex}"
    vocab = seqio.ByteVocabulary()
    task = seqio.Task(
        name,
        source=source,
        preprocessors=[seqio.preprocessors.tokenize],
        output_features={"text": seqio.Feature(vocab, add_eos=False)},
    )
    try:

        def ids(shard=None, seed=7):
            ds = task.get_dataset(
                {"text": 64}, split="validation", shuffle=True, seed=seed, shard_info=shard
            )
            return [x["text"].tobytes() for x in ds.as_numpy_iterator()]

        full = ids()
        assert len(full) == source.num_input_examples("validation")
        assert "Congress" in vocab.decode(list(np.frombuffer(full[0], np.int32)))
        assert ids() == full  # same seed, same order
        halves = [ids(seqio.ShardInfo(index=i, num_shards=2)) for i in range(2)]
        assert not set(halves[0]) & set(halves[1])
        assert sorted(halves[0] + halves[1]) == sorted(full)
    finally:
        seqio.TaskRegistry.remove(name)


def test_source_shuffle_depends_on_seed_only():
    source = corpus.sotu_source()
    a = _texts(source, "validation", shuffle=True, seed=1)
    assert a == _texts(source, "validation", shuffle=True, seed=1)
    assert a != _texts(source, "validation", shuffle=True, seed=2)
    assert sorted(a) == sorted(_texts(source, "validation", shuffle=False))


def _write_corpus(tmp_path):
    (tmp_path / "a.txt").write_text("first doc\n\n  second doc  \n")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write(json.dumps({"body": "third doc"}) + "\n\n" + json.dumps({"body": "fourth"}) + "\n")
    (tmp_path / "c.json").write_text(json.dumps({"body": "fifth doc", "x": 1}) + "\n")


def test_text_files_source_reads_txt_jsonl_and_gzip(tmp_path):
    _write_corpus(tmp_path)
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "v.txt.gz").write_bytes(gzip.compress(b"held out\n"))
    source = corpus.text_files_source(
        train_patterns=[str(tmp_path / "*.txt"), str(tmp_path / "*.json*")],
        validation_patterns=[str(tmp_path / "val" / "*")],
        text_key="body",
    )
    train = _texts(source, "train", shuffle=False)
    assert train == ["first doc", "second doc", "third doc", "fourth", "fifth doc"]
    assert _texts(source, "validation", shuffle=False) == ["held out"]
    assert source.num_input_examples("train") == 5


def test_text_files_source_splits_by_hash(tmp_path):
    docs = [f"document number {i}" for i in range(400)]
    (tmp_path / "all.txt").write_text("\n".join(docs + docs[:50]) + "\n")
    source = corpus.text_files_source(
        train_patterns=[str(tmp_path / "all.txt")], validation_percent=20
    )
    train = _texts(source, "train", shuffle=False)
    validation = _texts(source, "validation", shuffle=False)
    assert len(train) + len(validation) == 450
    assert not set(train) & set(validation)  # duplicates land in the same split
    assert 40 < len(validation) < 130


@pytest.mark.parametrize(
    ("setup", "kwargs", "message"),
    [
        (None, {"train_patterns": ["{d}/nothing*.txt"]}, "no file matches '.*nothing\\*.txt'"),
        (
            {"empty.txt": "\n  \n"},
            {"train_patterns": ["{d}/empty.txt"]},
            "empty.txt contains no text",
        ),
        (
            {"bad.jsonl": '{"text": "ok"}\n{"content": "x", "id": 3}\n'},
            {"train_patterns": ["{d}/bad.jsonl"]},
            r"bad.jsonl:2 has no 'text' field \(found \['content', 'id'\]\)",
        ),
        (
            {"one.txt": "only one document\n"},
            {"train_patterns": ["{d}/one.txt"], "validation_percent": 0},
            "the validation split is empty",
        ),
        (
            {"broken.jsonl": "{not json\n"},
            {"train_patterns": ["{d}/broken.jsonl"]},
            "broken.jsonl:1 is not valid JSON",
        ),
    ],
)
def test_text_files_source_errors(tmp_path, setup, kwargs, message):
    for name, content in (setup or {}).items():
        (tmp_path / name).write_text(content)
    kwargs = {
        k: [p.format(d=tmp_path) for p in v] if k.endswith("patterns") else v
        for k, v in kwargs.items()
    }
    with pytest.raises(UserError, match=message) as info:
        corpus.text_files_source(**kwargs)
    assert "\n" not in str(info.value)


def test_dataset_specs_are_scalar_strings():
    ds = corpus.sotu_source().get_dataset("validation", shuffle=False)
    assert ds.element_spec["text"] == tf.TensorSpec((), tf.string)
