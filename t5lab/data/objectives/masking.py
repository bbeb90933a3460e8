"""BERT-style masked-LM objectives: read a corrupted chunk, write the original chunk.

T5's "BERT-style" objective (Raffel et al. 2020, table 4): `inputs` is a chunk in which
selected tokens are replaced one-for-one (80% by <extra_id_0> as the single [MASK], 10% by
a random real token, 10% left as they are) and `targets` is the uncorrupted chunk, so
both have the chunk's length plus EOS. The four objectives differ only in which tokens
are selected: single tokens (BERT), whole words (BERT wwm), n-grams of words (ALBERT),
or geometric spans of words (SpanBERT).

Selection rules (one per objective, vectorised so a chunk is a few graph ops):
- tokens: exactly round(n * corrupt_rate) positions, uniformly (as BERT; at least one).
- whole words: words in random order, taken until round(n * corrupt_rate) tokens; the
  word crossing the budget is taken with probability (budget left / its length), so
  the expected count is exactly the budget, and words are never split.
- word spans (n-gram, SpanBERT): S spans with i.i.d. lengths in words, S drawn so that
  E[S] * mean length = corrupt_rate * words, placed uniformly at random with at least
  one unmasked word between spans (so every span keeps its sampled length). The token
  rate matches corrupt_rate in expectation, not per chunk.
80/10/10 is decided per token (as in Google BERT's wwm code) except for SpanBERT, which
decides per span. Random replacements are uniform over real ids and, as in BERT, may
equal the original token.
"""

import functools
from collections.abc import Callable, Mapping

import seqio
import tensorflow as tf

from t5lab.data.objectives.registry import Objective, register, tokenize_text
from t5lab.data.objectives.word_units import (
    Segmenter,
    geometric_length_probs,
    get_segmenter,
    ngram_length_probs,
    segment_text,
    select_units,
    select_whole_words,
    select_word_spans,
    token_budget,
    word_start_table,
)
from t5lab.data.token_preprocessors import concatenate_documents, split_tokens
from t5lab.data.vocab import get_vocabulary
from t5lab.errors import UserError

MIN_CHUNK = 4  # raw tokens; shorter chunks leave too little to mask and reconstruct
_FIRST_REAL_ID = 3  # after pad 0, eos 1, unk 2

Select = Callable[..., tf.Tensor]


# ---------------------------------------------------------------- knobs and lengths


def _check_rates(*, corrupt_rate: float, mask_rate: float, random_rate: float) -> None:
    for name, value in (
        ("corrupt_rate", corrupt_rate),
        ("mask_rate", mask_rate),
        ("random_rate", random_rate),
    ):
        if not 0.0 <= value <= 1.0:
            raise UserError(f"{name} must be in [0, 1], got {value}")
    if mask_rate + random_rate > 1.0:
        raise UserError(
            f"mask_rate + random_rate must be <= 1 (the rest is left unchanged), got "
            f"{mask_rate} + {random_rate}; lower mask_rate or random_rate"
        )


def mlm_chunk_length(*, sequence_length: Mapping[str, int] | None, who: str) -> int:
    """Raw tokens per chunk: inputs and targets are each the chunk plus EOS."""
    if not sequence_length or "inputs" not in sequence_length:
        raise UserError(
            f"{who} needs sequence_length['inputs'] (got {sequence_length!r}); "
            "pass sequence_length={'inputs': ..., 'targets': ...} to get_dataset"
        )
    inputs = int(sequence_length["inputs"])
    targets = int(sequence_length.get("targets") or inputs)
    chunk = min(inputs, targets) - 1
    if chunk < MIN_CHUNK:
        raise UserError(
            f"{who}: inputs/targets lengths {inputs}/{targets} are too small; both hold the "
            f"chunk plus EOS, so set TASK_FEATURE_LENGTHS inputs and targets >= {MIN_CHUNK + 1}"
        )
    return chunk


def split_to_mlm_chunks(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature] | None = None,
    *,
    who: str = "masked LM",
) -> tf.data.Dataset:
    """Cuts `targets` token streams into chunks that fit both inputs and targets with EOS."""
    del output_features  # the chunk size depends only on the lengths
    chunk = mlm_chunk_length(sequence_length=sequence_length, who=who)
    return split_tokens(dataset, max_tokens_per_chunk=chunk)


# ---------------------------------------------------------------- selection


def select_tokens(*, tokens: tf.Tensor, seed: tf.Tensor, corrupt_rate: float) -> tf.Tensor:
    """BERT: exactly round(n * corrupt_rate) token positions, chosen uniformly."""
    n = tf.size(tokens)
    return select_units(
        unit_lengths=tf.ones([n], tf.int32),
        budget=token_budget(n=n, corrupt_rate=corrupt_rate),
        seed=seed,
    )


# ---------------------------------------------------------------- replacement


def replace_selected(
    *,
    tokens: tf.Tensor,
    selected: tf.Tensor,
    seeds: tf.Tensor,
    mask_rate: float,
    random_rate: float,
    mask_id: int,
    real_ids_end: int,
    per_span: bool,
) -> tf.Tensor:
    """Selected tokens -> mask_id / a random real id / unchanged, with the given rates."""
    n = tf.size(tokens)
    draws = tf.random.stateless_uniform([n], seed=seeds[0])
    if per_span:  # one draw per run of selected tokens
        previous = tf.concat([[False], selected[:-1]], axis=0)
        span_ids = tf.maximum(tf.cumsum(tf.cast(selected & ~previous, tf.int32)) - 1, 0)
        draws = tf.gather(draws, span_ids)
    random_tokens = tf.random.stateless_uniform(
        [n], seed=seeds[1], minval=_FIRST_REAL_ID, maxval=real_ids_end, dtype=tokens.dtype
    )
    to_mask = selected & (draws < mask_rate)
    to_random = selected & (draws >= mask_rate) & (draws < mask_rate + random_rate)
    tokens_out = tf.where(to_random, random_tokens, tokens)
    return tf.where(to_mask, tf.constant(mask_id, tokens.dtype), tokens_out)


@seqio.map_over_dataset(num_seeds=3)
def _corrupt_example(features, *, seeds, select, replace):
    tokens = features["targets"]
    selected = select(tokens=tokens, seed=seeds[0])
    inputs = replace(tokens=tokens, selected=selected, seeds=seeds[1:])
    return {"inputs": inputs, "targets": tokens}


def masked_lm(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature],
    *,
    select: Select,
    mask_rate: float,
    random_rate: float,
    per_span: bool = False,
    needs_words: bool = False,
) -> tf.data.Dataset:
    """`targets` chunk -> {"inputs": corrupted chunk, "targets": the chunk}, without EOS.

    `select(tokens=, seed=)` marks the tokens to corrupt; with `needs_words` it also gets
    `starts_word=`, the vocabulary's word-start table.
    """
    del sequence_length  # chunks were cut to fit by split_to_mlm_chunks
    vocabulary = output_features["targets"].vocabulary
    extra_ids = getattr(vocabulary, "extra_ids", 0) or 0
    if extra_ids < 1:
        raise UserError(
            "masked-LM objectives use <extra_id_0> as [MASK]; use a vocabulary with extra_ids >= 1"
        )
    if needs_words:
        table = tf.constant(word_start_table(vocabulary=vocabulary))
        select = functools.partial(select, starts_word=table)
    replace = functools.partial(
        replace_selected,
        mask_rate=mask_rate,
        random_rate=random_rate,
        mask_id=vocabulary.vocab_size - 1,
        real_ids_end=vocabulary.vocab_size - extra_ids,
        per_span=per_span,
    )
    return _corrupt_example(dataset, select=select, replace=replace)


# ---------------------------------------------------------------- objectives


def _pipeline(
    name: str,
    select: Select,
    *,
    mask_rate: float,
    random_rate: float,
    per_span: bool = False,
    words: bool = False,
    cjk_segmenter: str | Segmenter = "none",
) -> list:
    """segment -> tokenize -> join documents -> chunks that fit -> corrupt -> EOS."""
    get_segmenter(cjk_segmenter)  # fail at build time on an unknown or missing segmenter
    return [
        functools.partial(segment_text, cjk_segmenter=cjk_segmenter),
        *tokenize_text(),
        concatenate_documents,
        functools.partial(split_to_mlm_chunks, who=name),
        functools.partial(
            masked_lm,
            select=select,
            mask_rate=mask_rate,
            random_rate=random_rate,
            per_span=per_span,
            needs_words=words,
        ),
        seqio.preprocessors.append_eos_after_trim,
    ]


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{name} must be an integer >= {minimum}, got {value!r}")


def bert_mlm_objective(
    *, corrupt_rate: float = 0.15, mask_rate: float = 0.8, random_rate: float = 0.1
) -> list:
    """BERT's masked LM: single tokens selected, 80/10/10 replaced; targets = the chunk."""
    _check_rates(corrupt_rate=corrupt_rate, mask_rate=mask_rate, random_rate=random_rate)
    select = functools.partial(select_tokens, corrupt_rate=corrupt_rate)
    return _pipeline("bert_mlm", select, mask_rate=mask_rate, random_rate=random_rate)


def whole_word_masking_objective(
    *,
    corrupt_rate: float = 0.15,
    mask_rate: float = 0.8,
    random_rate: float = 0.1,
    cjk_segmenter: str | Segmenter = "char",
) -> list:
    """BERT whole-word masking: all pieces of a selected word are corrupted together."""
    _check_rates(corrupt_rate=corrupt_rate, mask_rate=mask_rate, random_rate=random_rate)
    select = functools.partial(select_whole_words, corrupt_rate=corrupt_rate)
    return _pipeline(
        "whole_word_masking",
        select,
        mask_rate=mask_rate,
        random_rate=random_rate,
        words=True,
        cjk_segmenter=cjk_segmenter,
    )


def ngram_masking_objective(
    *,
    corrupt_rate: float = 0.15,
    max_ngram: int = 3,
    mask_rate: float = 0.8,
    random_rate: float = 0.1,
    cjk_segmenter: str | Segmenter = "char",
) -> list:
    """ALBERT n-gram masking: spans of n whole words, p(n) proportional to 1/n."""
    _check_rates(corrupt_rate=corrupt_rate, mask_rate=mask_rate, random_rate=random_rate)
    _check_int("max_ngram", max_ngram, 1)
    select = functools.partial(
        select_word_spans,
        corrupt_rate=corrupt_rate,
        length_probs=ngram_length_probs(max_ngram=max_ngram),
    )
    return _pipeline(
        "ngram_masking",
        select,
        mask_rate=mask_rate,
        random_rate=random_rate,
        words=True,
        cjk_segmenter=cjk_segmenter,
    )


def _check_geometric(geometric_p: float, max_span_words: int) -> None:
    if not 0.0 < geometric_p <= 1.0:
        raise UserError(f"geometric_p must be in (0, 1], got {geometric_p}")
    _check_int("max_span_words", max_span_words, 1)


def spanbert_objective(
    *,
    corrupt_rate: float = 0.15,
    geometric_p: float = 0.2,
    max_span_words: int = 10,
    mask_rate: float = 0.8,
    random_rate: float = 0.1,
    cjk_segmenter: str | Segmenter = "char",
) -> list:
    """SpanBERT: word spans of Geometric(p) length (mean 3.8 words), 80/10/10 per span."""
    _check_rates(corrupt_rate=corrupt_rate, mask_rate=mask_rate, random_rate=random_rate)
    _check_geometric(geometric_p, max_span_words)
    select = functools.partial(
        select_word_spans,
        corrupt_rate=corrupt_rate,
        length_probs=geometric_length_probs(geometric_p=geometric_p, max_span_words=max_span_words),
    )
    return _pipeline(
        "spanbert",
        select,
        mask_rate=mask_rate,
        random_rate=random_rate,
        per_span=True,
        words=True,
        cjk_segmenter=cjk_segmenter,
    )


# ---------------------------------------------------------------- noise masks for `show`
# (tokens, seeds, **knobs) -> bool[n], selecting with seeds[0] as the pipeline does. The
# word-level ones also take `vocabulary` (default: the shipped SentencePiece model).


def _starts_word(vocabulary: seqio.Vocabulary | None) -> tf.Tensor:
    return tf.constant(word_start_table(vocabulary=vocabulary or get_vocabulary()))


def _bert_mask(tokens, seeds, *, corrupt_rate=0.15, **_):
    return select_tokens(
        tokens=tf.convert_to_tensor(tokens, tf.int32), seed=seeds[0], corrupt_rate=corrupt_rate
    )


def _wwm_mask(tokens, seeds, *, corrupt_rate=0.15, vocabulary=None, **_):
    return select_whole_words(
        tokens=tf.convert_to_tensor(tokens, tf.int32),
        seed=seeds[0],
        corrupt_rate=corrupt_rate,
        starts_word=_starts_word(vocabulary),
    )


def _ngram_mask(tokens, seeds, *, corrupt_rate=0.15, max_ngram=3, vocabulary=None, **_):
    return select_word_spans(
        tokens=tf.convert_to_tensor(tokens, tf.int32),
        seed=seeds[0],
        corrupt_rate=corrupt_rate,
        starts_word=_starts_word(vocabulary),
        length_probs=ngram_length_probs(max_ngram=max_ngram),
    )


def _spanbert_mask(
    tokens, seeds, *, corrupt_rate=0.15, geometric_p=0.2, max_span_words=10, vocabulary=None, **_
):
    return select_word_spans(
        tokens=tf.convert_to_tensor(tokens, tf.int32),
        seed=seeds[0],
        corrupt_rate=corrupt_rate,
        starts_word=_starts_word(vocabulary),
        length_probs=geometric_length_probs(geometric_p=geometric_p, max_span_words=max_span_words),
    )


_T5_TABLE4 = "; T5 (Raffel et al. 2020) table 4 'BERT-style' targets"
register(
    Objective(
        name="bert_mlm",
        paper="Devlin et al. 2019, BERT" + _T5_TABLE4,
        summary="corrupt 15% of tokens (80% mask, 10% random, 10% kept); targets = original",
        build=bert_mlm_objective,
        noise_mask=_bert_mask,
    )
)
register(
    Objective(
        name="whole_word_masking",
        paper="Google BERT whole-word masking; Cui et al. 2019, Chinese-BERT-wwm",
        summary="like bert_mlm but corrupts all pieces of each selected word together",
        build=whole_word_masking_objective,
        noise_mask=_wwm_mask,
    )
)
register(
    Objective(
        name="ngram_masking",
        paper="Lan et al. 2020, ALBERT n-gram masking; Sun et al. 2019, ERNIE",
        summary="corrupt spans of 1..max_ngram whole words, p(n) ~ 1/n; targets = original",
        build=ngram_masking_objective,
        noise_mask=_ngram_mask,
    )
)
register(
    Objective(
        name="spanbert",
        paper="Joshi et al. 2020, SpanBERT",
        summary="corrupt geometric-length spans of whole words (mean 3.8), 80/10/10 per span",
        build=spanbert_objective,
        noise_mask=_spanbert_mask,
    )
)
