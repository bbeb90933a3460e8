"""BART's noising functions (Lewis et al. 2020, section 2.2) as objectives.

Each noise is a per-example function on a 1-D int32 token tensor and a stateless seed,
so combinations are just sequences of noises (`denoise` applies them in order). Inputs
are the noised chunk; targets are always the original chunk. The single mask token is
`<extra_id_0>` (vocab_size - 1). Differences from fairseq's `DenoisingDataset`, on
purpose: noise is per subword token (fairseq's span-poisson masks whole words);
token masking/deletion are i.i.d. per token; text infilling keeps the last sampled span
whole, so span lengths stay exactly Poisson (see `infill_spans`); sentences come from a
plain text rule (`sentences.py`); and there is no random-token replacement (mask_random).

Chunks hold n = min(inputs, targets) - 1 raw tokens (EOS takes the last slot): targets are
the chunk itself, and every noise here keeps inputs within n tokens, except text
infilling, whose zero-length spans add tokens; it caps its spans to what fits.
"""

import functools
from collections.abc import Callable, Mapping, Sequence

import seqio
import tensorflow as tf

from t5lab.data.objectives.bart_noise import (
    check_lambda,
    check_rate,
    check_ratio,
    delete_tokens,
    infill_spans,
    mask_tokens,
    permute_sentences,
    rotate_tokens,
)
from t5lab.data.objectives.registry import Objective, register, tokenize_text
from t5lab.data.objectives.sentences import pack_sentences, tokenize_sentences
from t5lab.data.token_preprocessors import concatenate_documents, split_tokens
from t5lab.errors import UserError

# A noise: (*, tokens, sentence_ids, seed, mask_id, max_length) -> noised tokens.
Noise = Callable[..., tf.Tensor]
_fold = tf.random.experimental.stateless_fold_in


# --- steps: the noises with their knobs bound, in `denoise`'s calling convention -------------


def _token_masking(mask_rate: float) -> Noise:
    def step(*, tokens, seed, mask_id, **_):
        return mask_tokens(tokens=tokens, seed=seed, mask_rate=mask_rate, mask_id=mask_id)[0]

    return step


def _token_deletion(delete_rate: float) -> Noise:
    def step(*, tokens, seed, **_):
        return delete_tokens(tokens=tokens, seed=seed, delete_rate=delete_rate)[0]

    return step


def _text_infilling(mask_rate: float, poisson_lambda: float) -> Noise:
    def step(*, tokens, seed, mask_id, max_length, **_):
        return infill_spans(
            tokens=tokens,
            seed=seed,
            mask_rate=mask_rate,
            poisson_lambda=poisson_lambda,
            mask_id=mask_id,
            max_length=max_length,
        )[0]

    return step


def _sentence_permutation(permute_ratio: float) -> Noise:
    def step(*, tokens, sentence_ids, seed, **_):
        return permute_sentences(
            tokens=tokens, sentence_ids=sentence_ids, seed=seed, permute_ratio=permute_ratio
        )

    return step


def _document_rotation() -> Noise:
    def step(*, tokens, seed, **_):
        return rotate_tokens(tokens=tokens, seed=seed)[0]

    return step


# --- seqio preprocessors -------------------------------------------------------------------


def _chunk_length(sequence_length: Mapping[str, int] | None) -> int:
    """Raw tokens per chunk: the original (+EOS) must fit both inputs and targets."""
    lengths = dict(sequence_length or {})
    if "inputs" not in lengths or "targets" not in lengths:
        raise UserError(
            f"BART noising needs sequence_length['inputs'] and ['targets'] (got {lengths!r}); "
            "pass sequence_length={'inputs': ..., 'targets': ...}"
        )
    n = min(int(lengths["inputs"]), int(lengths["targets"])) - 1
    if n < 2:
        raise UserError(
            f"sequence_length {lengths} is too small for BART noising: inputs and targets "
            "must both be >= 3 (two tokens and EOS); raise TASK_FEATURE_LENGTHS"
        )
    return n


def split_token_chunks(
    dataset: tf.data.Dataset, sequence_length: Mapping[str, int] | None
) -> tf.data.Dataset:
    """Token stream -> chunks of min(inputs, targets) - 1 tokens (tail kept)."""
    return split_tokens(dataset, max_tokens_per_chunk=_chunk_length(sequence_length))


def split_sentence_chunks(
    dataset: tf.data.Dataset, sequence_length: Mapping[str, int] | None
) -> tf.data.Dataset:
    """Per-document sentences -> chunks of whole sentences, min(inputs, targets) - 1 at most."""
    return pack_sentences(dataset, max_tokens_per_chunk=_chunk_length(sequence_length))


def denoise(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int] | None,
    output_features: Mapping[str, seqio.Feature],
    *,
    noises: Sequence[Noise],
) -> tf.data.Dataset:
    """`targets` chunk -> {"inputs": noises applied in order, "targets": the chunk}, no EOS.

    A noise needing `sentence_ids` (permutation) must come first: later noises change
    lengths. Each noise gets its own seed, folded from the one seqio injects.
    """
    _chunk_length(sequence_length)  # validates the lengths (the splitter uses the same n)
    vocabulary = output_features["targets"].vocabulary
    if not getattr(vocabulary, "extra_ids", 0):
        raise UserError(
            "BART noising uses <extra_id_0> as its mask token, but the vocabulary has "
            "extra_ids=0; use a vocabulary with extra_ids >= 1"
        )
    mask_id = vocabulary.vocab_size - 1
    max_length = int(sequence_length["inputs"]) - 1

    @seqio.map_over_dataset(num_seeds=1)
    def _noise(features, seed):
        targets = features["targets"]
        tokens = targets
        for i, noise in enumerate(noises):
            tokens = noise(
                tokens=tokens,
                sentence_ids=features.get("sentence_ids"),
                seed=_fold(seed, i),
                mask_id=mask_id,
                max_length=max_length,
            )
        return {"inputs": tokens, "targets": targets}

    return _noise(dataset)


def _token_pipeline(*noises: Noise) -> list:
    return [
        *tokenize_text(),
        concatenate_documents,
        split_token_chunks,
        functools.partial(denoise, noises=noises),
        seqio.preprocessors.append_eos_after_trim,
    ]


def _sentence_pipeline(*noises: Noise) -> list:
    return [
        tokenize_sentences,
        seqio.CacheDatasetPlaceholder(),
        split_sentence_chunks,
        functools.partial(denoise, noises=noises),
        seqio.preprocessors.append_eos_after_trim,
    ]


# --- builders (knobs = keyword-only parameters with the literature defaults) ---------------


def bart_token_masking(*, mask_rate: float = 0.15) -> list:
    """BERT-style masking with one mask token; 0.15 is BERT's rate (BART states none)."""
    check_rate("mask_rate", mask_rate)
    return _token_pipeline(_token_masking(mask_rate))


def bart_token_deletion(*, delete_rate: float = 0.15) -> list:
    """Random tokens deleted; the model must also find where (0.15 as for masking)."""
    check_rate("delete_rate", delete_rate)
    return _token_pipeline(_token_deletion(delete_rate))


def bart_text_infilling(*, mask_rate: float = 0.3, poisson_lambda: float = 3.0) -> list:
    """Poisson(3) spans covering 30% of tokens, each -> one mask (BART's best single noise)."""
    check_rate("mask_rate", mask_rate)
    check_lambda(poisson_lambda)
    return _token_pipeline(_text_infilling(mask_rate, poisson_lambda))


def bart_sentence_permutation(*, permute_ratio: float = 1.0) -> list:
    """Chunks of whole sentences, shuffled (fairseq's --permute-sentences, 1.0 in BART)."""
    check_ratio(permute_ratio)
    return _sentence_pipeline(_sentence_permutation(permute_ratio))


def bart_document_rotation() -> list:
    """The chunk rotated to start at a random token; the model must find the real start."""
    return _token_pipeline(_document_rotation())


def bart_infilling_permutation(
    *, mask_rate: float = 0.3, poisson_lambda: float = 3.0, permute_ratio: float = 1.0
) -> list:
    """BART-large's pretraining noise: sentence permutation, then text infilling."""
    check_rate("mask_rate", mask_rate)
    check_lambda(poisson_lambda)
    check_ratio(permute_ratio)
    return _sentence_pipeline(
        _sentence_permutation(permute_ratio), _text_infilling(mask_rate, poisson_lambda)
    )


# --- `t5lab objectives show` masks ---------------------------------------------------------


def _masking_mask(tokens, seeds, *, mask_rate=0.15):
    return mask_tokens(tokens=tokens, seed=seeds[0], mask_rate=mask_rate, mask_id=0)[1]


def _deletion_mask(tokens, seeds, *, delete_rate=0.15):
    return delete_tokens(tokens=tokens, seed=seeds[0], delete_rate=delete_rate)[1]


def _infilling_mask(tokens, seeds, *, mask_rate=0.3, poisson_lambda=3.0):
    n = tf.size(tokens)
    return infill_spans(
        tokens=tokens,
        seed=seeds[0],
        mask_rate=mask_rate,
        poisson_lambda=poisson_lambda,
        mask_id=0,
        max_length=2 * n + 1,
    )[1]


_PAPER = "Lewis et al. 2020, BART (section 2.2)"
for _name, _build, _mask, _summary in (
    (
        "bart_token_masking",
        bart_token_masking,
        _masking_mask,
        "replace random tokens (i.i.d.) with one mask token; targets are the original",
    ),
    (
        "bart_token_deletion",
        bart_token_deletion,
        _deletion_mask,
        "delete random tokens (i.i.d.); targets are the original",
    ),
    (
        "bart_text_infilling",
        bart_text_infilling,
        _infilling_mask,
        "replace Poisson-length spans (even empty ones) with one mask each",
    ),
    (
        "bart_sentence_permutation",
        bart_sentence_permutation,
        None,
        "shuffle the sentences of a chunk; targets are the original order",
    ),
    (
        "bart_document_rotation",
        bart_document_rotation,
        None,
        "rotate the chunk to start at a random token; targets are the original",
    ),
    (
        "bart_infilling_permutation",
        bart_infilling_permutation,
        None,
        "shuffle sentences, then text infilling (BART-large's pretraining noise)",
    ),
):
    register(Objective(name=_name, paper=_PAPER, summary=_summary, build=_build, noise_mask=_mask))
