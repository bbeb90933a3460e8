"""The shipped SentencePiece model, byte vocab, and training a model with T5's ids."""

import itertools
import json

import pytest
import sentencepiece as spm
import seqio

from t5lab.data import corpus, vocab
from t5lab.data.downstream import bible
from t5lab.errors import UserError


@pytest.fixture(scope="module")
def default_vocab():
    return vocab.get_vocabulary()


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """2,000 SOTU sentences as JSONL: enough for a 500-piece model in about a second."""
    path = tmp_path_factory.mktemp("corpus") / "small.jsonl"
    docs = corpus.sotu_documents(split="train")[:40]
    sentences = itertools.chain.from_iterable(vocab.split_sentences(d["text"]) for d in docs)
    lines = [json.dumps({"body": s}) for s in itertools.islice(sentences, 2000)]
    assert len(lines) == 2000
    path.write_text("\n".join(lines) + "\n")
    return path


def test_shipped_model_has_t5_special_ids():
    processor = spm.SentencePieceProcessor(model_file=vocab.DEFAULT_SPM_PATH)
    assert processor.get_piece_size() == 8000
    assert (processor.pad_id(), processor.eos_id(), processor.unk_id()) == (0, 1, 2)
    assert processor.bos_id() == -1
    assert [processor.id_to_piece(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    # Byte fallback: ids 3..258 are the bytes <0x00>..<0xFF>.
    assert [i for i in range(8000) if processor.is_byte(i)] == list(range(3, 259))
    assert processor.id_to_piece(3 + 0xC3) == "<0xC3>"


def test_shipped_model_spells_the_downstream_suite(default_vocab):
    """Spanish accents, inverted marks and GLUE's underscores round-trip without <unk>."""
    for text in (
        "¿Quién es? ¡Ésta es la canción del niño!",
        "á é í ó ú ñ ü Á É Í Ó Ú Ñ",
        "not_equivalent not_entailment not_duplicate",
        "Ein Straße in Zürich: 東京 😀",  # no pieces of their own: UTF-8 bytes
    ):
        ids = default_vocab.encode(text)
        assert 2 not in ids, text
        assert default_vocab.decode(ids) == text
    # Spanish and the underscore have pieces of their own, not just bytes.
    processor = default_vocab.tokenizer
    assert not any(processor.is_byte(int(i)) for i in default_vocab.encode("¿Señor? ¡Jehová!"))
    assert [processor.id_to_piece(int(i)) for i in default_vocab.encode("not_equivalent")][:2] == [
        "▁not",
        "_",
    ]
    # Decoding byte ids: a whole UTF-8 character, and a lone byte (U+FFFD, no error).
    assert default_vocab.decode([3 + 0xC3, 3 + 0xB1]) == "ñ"
    assert default_vocab.decode([3 + 0xC3]) == "\ufffd"


def test_bible_en_es_targets_encode_without_unk(default_vocab):
    """Every test-split Reina-Valera target round-trips exactly (the vocabulary saw only train)."""
    targets = [ex["targets"] for ex in bible.translation_examples()["test"]]
    assert len(targets) > 3000
    for target in targets:
        ids = default_vocab.encode(target)
        assert 2 not in ids and default_vocab.decode(ids) == target, target


def test_vocab_size_with_extra_ids_and_padding(default_vocab):
    assert default_vocab.vocab_size == 8100
    assert vocab.padded_vocab_size(default_vocab) == 8192
    assert vocab.padded_vocab_size(default_vocab, multiple=1) == 8100
    assert vocab.padded_vocab_size(vocab.get_vocabulary(extra_ids=28)) == 8064


def test_round_trip_on_a_sotu_sentence(default_vocab):
    text = next(vocab.split_sentences(corpus.sotu_documents(split="validation")[0]["text"]))
    ids = default_vocab.encode(text)
    assert default_vocab.decode(ids) == text
    assert 2 not in ids  # no <unk> on in-domain English
    assert len(ids) < len(text.split()) * 2  # a real vocabulary, not characters


def test_sentinels_count_down_from_the_end(default_vocab):
    assert vocab.sentinel_id(default_vocab, 0) == 8099
    assert default_vocab.decode([vocab.sentinel_id(default_vocab, 0)]) == "<extra_id_0>"
    assert default_vocab.decode([vocab.sentinel_id(default_vocab, 99)]) == "<extra_id_99>"
    with pytest.raises(UserError, match="100 extra ids"):
        vocab.sentinel_id(default_vocab, 100)


def test_byte_vocabulary_is_selectable():
    byte_vocab = vocab.get_vocabulary(kind="byte", extra_ids=10)
    assert isinstance(byte_vocab, seqio.ByteVocabulary)
    assert byte_vocab.vocab_size == 3 + 256 + 10
    assert byte_vocab.decode(byte_vocab.encode("Union")) == "Union"


def test_vocabulary_errors(tmp_path):
    with pytest.raises(UserError, match="unknown vocabulary kind 'bytes'.*did you mean 'byte'"):
        vocab.get_vocabulary(kind="bytes")
    with pytest.raises(UserError, match="sentencepiece, byte"):
        vocab.get_vocabulary(kind="wordpiece")
    with pytest.raises(UserError, match="SentencePiece model not found: .*missing.model"):
        vocab.get_vocabulary(spm_path=str(tmp_path / "missing.model"))


def test_split_sentences_respects_the_line_limit():
    text = "Short one. " + "word " * 3000 + "end. Last!"
    pieces = list(vocab.split_sentences(text))
    assert pieces[0] == "Short one."
    assert pieces[-1] == "Last!"
    assert all(len(p.encode()) <= 2000 for p in pieces)
    assert " ".join(pieces).split() == text.split()


def test_train_sentencepiece_small_model(small_corpus, tmp_path):
    path = vocab.train_sentencepiece(
        input_patterns=[str(small_corpus)],
        model_prefix=str(tmp_path / "m" / "small"),
        vocab_size=500,
        text_key="body",
    )
    assert path == str(tmp_path / "m" / "small.model")
    processor = spm.SentencePieceProcessor(model_file=path)
    assert processor.get_piece_size() == 500
    assert sum(processor.is_byte(i) for i in range(500)) == 256  # byte_fallback by default
    assert (processor.pad_id(), processor.eos_id(), processor.unk_id(), processor.bos_id()) == (
        0,
        1,
        2,
        -1,
    )
    trained = vocab.get_vocabulary(spm_path=path)
    assert trained.vocab_size == 600
    assert trained.decode(trained.encode("the people of the United States")) == (
        "the people of the United States"
    )
    unseen = "El Señor dijo: ¿dónde?"  # characters the English speeches never use
    assert 2 not in trained.encode(unseen) and trained.decode(trained.encode(unseen)) == unseen
    # Same input and prefix give the same bytes (checked with 2 threads).
    first = open(path, "rb").read()
    vocab.train_sentencepiece(
        input_patterns=[str(small_corpus)],
        model_prefix=str(tmp_path / "m" / "small"),
        vocab_size=500,
        text_key="body",
    )
    assert open(path, "rb").read() == first


def test_train_sentencepiece_without_byte_fallback(small_corpus, tmp_path):
    path = vocab.train_sentencepiece(
        input_patterns=[str(small_corpus)],
        model_prefix=str(tmp_path / "nobytes"),
        vocab_size=300,  # below 256 bytes + specials + characters: only without bytes
        text_key="body",
        byte_fallback=False,
    )
    processor = spm.SentencePieceProcessor(model_file=path)
    assert not any(processor.is_byte(i) for i in range(processor.get_piece_size()))
    assert processor.unk_id() in processor.encode("El Señor")
    with pytest.raises(
        UserError,
        match=r"vocab_size=300 is too small for .*256 byte pieces.*raise vocab_size to at least",
    ):
        vocab.train_sentencepiece(
            input_patterns=[str(small_corpus)],
            model_prefix=str(tmp_path / "bytes"),
            vocab_size=300,
            text_key="body",
        )


def test_train_sentencepiece_errors(small_corpus, tmp_path):
    with pytest.raises(UserError, match="no file matches"):
        vocab.train_sentencepiece(
            input_patterns=[str(tmp_path / "none*.txt")], model_prefix=str(tmp_path / "x")
        )
    (tmp_path / "blank.txt").write_text("\n\n")
    with pytest.raises(UserError, match="blank.txt contains no text"):
        vocab.train_sentencepiece(
            input_patterns=[str(tmp_path / "blank.txt")], model_prefix=str(tmp_path / "x")
        )
    (tmp_path / "tiny.txt").write_text("a small text about the union.\nanother line here.\n")
    with pytest.raises(
        UserError, match=r"vocab_size=8000 is too large.*lower vocab_size to at most"
    ):
        vocab.train_sentencepiece(
            input_patterns=[str(tmp_path / "tiny.txt")], model_prefix=str(tmp_path / "x")
        )
    with pytest.raises(UserError, match="no 'text' field"):
        vocab.train_sentencepiece(
            input_patterns=[str(small_corpus)], model_prefix=str(tmp_path / "x")
        )


def test_literal_sentinels_in_text_become_sentinel_ids():
    vocabulary = vocab.get_vocabulary()
    ids = vocab.encode_with_sentinels(vocabulary, "The state of the <extra_id_0> is <extra_id_1>.")
    first, second = vocab.sentinel_id(vocabulary, 0), vocab.sentinel_id(vocabulary, 1)
    assert ids.count(first) == 1 and ids.count(second) == 1
    assert ids.index(first) < ids.index(second)
    decoded = vocabulary.decode(ids)
    assert decoded.index("<extra_id_0>") < decoded.index("<extra_id_1>")
    assert decoded.startswith("The state of the")
    plain = [int(i) for i in vocabulary.encode("The state of the union")]
    assert vocab.encode_with_sentinels(vocabulary, "The state of the union") == plain
