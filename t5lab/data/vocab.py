"""Vocabularies: the shipped SentencePiece model, bytes, and training your own (T5 ids)."""

import math
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import sentencepiece as spm
import seqio
import tensorflow as tf

from t5lab.data.corpus import iter_documents
from t5lab.errors import UserError, did_you_mean

DEFAULT_SPM_PATH = str(Path(__file__).resolve().parents[1] / "assets" / "default_unigram_8k.model")
KINDS = ("sentencepiece", "byte")
# SentencePiece silently skips sentences longer than this many bytes (max_sentence_length).
_MAX_SENTENCE_BYTES = 4192
_PIECE_BYTES = 2000
_SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"')\]]*\s+|\n+")


def train_sentencepiece(
    *,
    input_patterns: Sequence[str],
    model_prefix: str,
    vocab_size: int = 8000,
    text_key: str = "text",
    character_coverage: float = 0.9999,
    seed_sentencepiece_size: int = 200_000,
    max_sentences: int = 2_000_000,
    num_threads: int = 2,
    byte_fallback: bool = True,
) -> str:
    """Train a unigram model with T5's ids (pad 0, eos 1, unk 2, no BOS); returns the .model path.

    Documents are cut into sentences first, because SentencePiece drops lines over 4192 bytes and
    whole speeches are far longer. Above `max_sentences`, a fixed-seed sample is used, so a given
    input always gives the same model. The prefix is stored inside the model, so use the same
    (e.g. repo-relative) prefix to reproduce identical bytes.

    With `byte_fallback` (the default) 256 of the pieces are the bytes `<0x00>`..`<0xFF>`, and a
    character without a piece of its own is spelled as its UTF-8 bytes: no text encodes to <unk>
    (id 2). Without it such characters become <unk> and are lost on decoding.
    """
    if vocab_size < 10:
        raise UserError(f"vocab_size must be at least 10, got {vocab_size}")
    sentences = [
        s
        for _, text in iter_documents(patterns=input_patterns, text_key=text_key)
        for s in split_sentences(text)
    ]
    if not sentences:
        raise UserError(f"no text to train on in {list(input_patterns)}")
    if len(sentences) > max_sentences:
        keep = sorted(random.Random(0).sample(range(len(sentences)), max_sentences))
        sentences = [sentences[i] for i in keep]
    Path(model_prefix).parent.mkdir(parents=True, exist_ok=True)
    spm.set_random_generator_seed(0)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_prefix=model_prefix,
            model_type="unigram",
            vocab_size=vocab_size,
            character_coverage=character_coverage,
            seed_sentencepiece_size=seed_sentencepiece_size,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            max_sentence_length=_MAX_SENTENCE_BYTES,
            num_threads=num_threads,
            byte_fallback=byte_fallback,
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            minloglevel=2,
        )
    except RuntimeError as e:
        raise _friendly_error(e, vocab_size=vocab_size, byte_fallback=byte_fallback) from None
    return f"{model_prefix}.model"


def split_sentences(text: str) -> Iterator[str]:
    """Sentence-sized pieces of `text`, each under SentencePiece's line limit."""
    for sentence in _SENTENCE_END.split(text):
        sentence = " ".join(sentence.split())
        while len(sentence.encode("utf-8")) > _PIECE_BYTES:
            limit = len(sentence.encode("utf-8")[:_PIECE_BYTES].decode("utf-8", "ignore"))
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            yield sentence[:cut]
            sentence = sentence[cut:].lstrip()
        if sentence:
            yield sentence


def get_vocabulary(
    *, kind: str = "sentencepiece", spm_path: str | None = None, extra_ids: int = 100
) -> seqio.Vocabulary:
    """The vocabulary by name: "sentencepiece" (default: the shipped 8k model) or "byte"."""
    if extra_ids < 0:
        raise UserError(f"extra_ids must be >= 0, got {extra_ids}")
    if kind == "byte":
        return seqio.ByteVocabulary(extra_ids=extra_ids)
    if kind != "sentencepiece":
        raise UserError(
            f"unknown vocabulary kind {kind!r}; expected one of {', '.join(KINDS)}"
            + did_you_mean(kind, KINDS)
        )
    path = spm_path or DEFAULT_SPM_PATH
    if not tf.io.gfile.exists(path):
        raise UserError(f"SentencePiece model not found: {path}")
    return seqio.SentencePieceVocabulary(path, extra_ids=extra_ids)


def padded_vocab_size(vocabulary: seqio.Vocabulary, *, multiple: int = 128) -> int:
    """Embedding rows: vocab_size rounded up to `multiple` (faster matmuls on accelerators)."""
    if multiple < 1:
        raise UserError(f"multiple must be >= 1, got {multiple}")
    return math.ceil(vocabulary.vocab_size / multiple) * multiple


def sentinel_id(vocabulary: seqio.Vocabulary, index: int) -> int:
    """Id of `<extra_id_{index}>`: T5 counts sentinels down from the last id."""
    if not 0 <= index < vocabulary.extra_ids:
        raise UserError(
            f"sentinel index {index} out of range: the vocabulary has {vocabulary.extra_ids} "
            "extra ids"
        )
    return vocabulary.vocab_size - 1 - index


_SENTINEL = re.compile(r"<extra_id_(\d+)>")


def encode_with_sentinels(vocabulary: seqio.Vocabulary, text: str) -> list[int]:
    """Token ids of `text`, with each literal `<extra_id_N>` mapped to its sentinel id.

    SentencePiece knows nothing of seqio's sentinels and would spell them out in pieces;
    a user asking a span-corruption model to fill a gap writes them literally.
    """
    ids: list[int] = []
    position = 0
    for match in _SENTINEL.finditer(text):
        ids += list(vocabulary.encode(text[position : match.start()].strip()))
        ids.append(sentinel_id(vocabulary, int(match.group(1))))
        position = match.end()
    ids += list(vocabulary.encode(text[position:].strip()))
    return [int(i) for i in ids]


def _friendly_error(error: RuntimeError, *, vocab_size: int, byte_fallback: bool) -> Exception:
    message = str(error)
    if re.search(r"Vocabulary size (is )?too high", message):
        limit = re.search(r"<= ?(\d+)", message)
        at_most = f" to at most {limit.group(1)}" if limit else ""
        return UserError(
            f"vocab_size={vocab_size} is too large for this text: lower vocab_size{at_most} "
            "or add more text"
        )
    if "Vocabulary size is smaller than required_chars" in message:
        required = re.search(r"\d+ vs (\d+)", message)
        at_least = f" to at least {required.group(1)}" if required else ""
        parts = "the special ids and one piece per distinct character" + (
            ", plus 256 byte pieces (byte_fallback)" if byte_fallback else ""
        )
        return UserError(
            f"vocab_size={vocab_size} is too small for {parts}: raise vocab_size{at_least} or "
            "lower character_coverage"
        )
    return error
