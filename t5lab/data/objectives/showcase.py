"""What each objective does, in plain text: the table of objectives and one worked example.

Backs `t5lab objectives list|show`. `show_objective` runs the objective's real seqio
preprocessors on the given text (a throwaway Task), so what it prints is exactly what
training would see for that text, seed and lengths.
"""

import inspect
import uuid
from collections.abc import Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf

from t5lab.data.objectives import registry
from t5lab.data.vocab import get_vocabulary
from t5lab.errors import UserError, did_you_mean

MAX_EXAMPLES = 8  # a long text makes many chunks; showing the first few is enough


def knobs_text(knobs: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in knobs.items()) or "-"


def list_objectives() -> str:
    """A markdown table of every registered objective: name, paper, knobs, summary."""
    rows = [
        (o.name, o.paper, knobs_text(o.knobs), o.summary)
        for o in (registry.get(n) for n in registry.names())
    ]
    header = ("objective", "paper", "knobs (defaults)", "what it does")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(map(str.ljust, cells, widths)) + " |"
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _check_knobs(objective: registry.Objective, knobs: Mapping[str, object]) -> dict:
    known = objective.knobs
    for key in knobs:
        if key not in known:
            options = ", ".join(known) or "none"
            raise UserError(
                f"unknown knob {key!r} for objective {objective.name!r}"
                f"{did_you_mean(key, known)}; its knobs are: {options}"
            )
    return {**known, **knobs}


def _build(objective: registry.Objective, knobs: Mapping[str, object]) -> list:
    try:
        return objective.build(**knobs)
    except TypeError as e:  # a knob value of the wrong type
        raise UserError(f"bad knob value for objective {objective.name!r}: {e}") from None


def run_objective(
    *,
    name: str,
    text: str,
    knobs: Mapping[str, object] | None = None,
    inputs_length: int = 64,
    targets_length: int | None = None,
    seed: int = 0,
    vocabulary: seqio.Vocabulary | None = None,
) -> list[dict[str, np.ndarray]]:
    """The examples the objective's pipeline makes from `text` (numpy `inputs`/`targets`)."""
    objective = registry.get(name)
    knobs = _check_knobs(objective, knobs or {})
    if not text.strip():
        raise UserError("the text to show is empty; pass some text")
    if inputs_length < 2:
        raise UserError(f"inputs_length must be >= 2, got {inputs_length}")
    vocabulary = vocabulary or get_vocabulary()
    targets_length = targets_length or 4 * inputs_length

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        del split, shuffle_files, seed
        return tf.data.Dataset.from_tensors({"text": text})

    task_name = f"_t5lab_show_{name}_{uuid.uuid4().hex}"
    seqio.TaskRegistry.add(
        task_name,
        source=seqio.FunctionDataSource(dataset_fn, splits=["train"]),
        preprocessors=_build(objective, knobs),
        output_features={
            "inputs": seqio.Feature(vocabulary, add_eos=True, required=False),
            "targets": seqio.Feature(vocabulary, add_eos=True),
        },
        metric_fns=[],
    )
    try:
        dataset = seqio.TaskRegistry.get(task_name).get_dataset(
            {"inputs": inputs_length, "targets": targets_length},
            split="train",
            shuffle=False,
            seed=seed,
            use_cached=False,
        )
        return list(dataset.take(MAX_EXAMPLES + 1).as_numpy_iterator())
    finally:
        seqio.TaskRegistry.remove(task_name)


def piece(vocabulary: seqio.Vocabulary, token: int) -> str:
    """One id as readable text: sentinels, EOS and pad by name, else its piece."""
    token = int(token)
    extra_ids = getattr(vocabulary, "extra_ids", 0) or 0
    if token >= vocabulary.vocab_size - extra_ids:
        return f"<extra_id_{vocabulary.vocab_size - 1 - token}>"
    if token == vocabulary.eos_id:
        return "</s>"
    if token == vocabulary.pad_id:
        return "<pad>"
    tokenizer = getattr(vocabulary, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "id_to_piece"):
        return tokenizer.id_to_piece(token)
    decoded = vocabulary.decode([token])
    if decoded == " ":
        return "▁"
    return decoded if decoded.isprintable() and decoded.strip() else f"<{token}>"


def decode_visible(vocabulary: seqio.Vocabulary, tokens: Sequence[int]) -> str:
    """Text of `tokens` with sentinels and EOS kept visible (ByteVocabulary drops them)."""
    extra_ids = getattr(vocabulary, "extra_ids", 0) or 0
    first_special = vocabulary.vocab_size - extra_ids
    parts, run = [], []
    for t in (int(t) for t in tokens):
        if t >= first_special or t in (vocabulary.eos_id, vocabulary.pad_id):
            parts += [vocabulary.decode(run)] if run else []
            parts.append(piece(vocabulary, t))
            run = []
        else:
            run.append(t)
    parts += [vocabulary.decode(run)] if run else []
    return " ".join(p for p in parts if p)


def _noise_mask_line(
    objective: registry.Objective,
    tokens: np.ndarray,
    *,
    knobs: Mapping[str, object],
    seed: int,
    vocabulary: seqio.Vocabulary,
) -> str:
    params = inspect.signature(objective.noise_mask).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    extra = {**knobs, "vocabulary": vocabulary}
    kwargs = {k: v for k, v in extra.items() if takes_any or k in params}
    seeds = [tf.constant([seed, i], tf.int32) for i in range(8)]
    mask = np.asarray(objective.noise_mask(tf.constant(tokens, tf.int32), seeds, **kwargs))
    marked = " ".join(
        f"[{piece(vocabulary, t)}]" if m else piece(vocabulary, t)
        for t, m in zip(tokens, mask, strict=True)
    )
    return (
        f"noise mask ([corrupted], {int(mask.sum())} of {len(tokens)}; a draw of the "
        f"objective's mask on the whole text, seed {seed}; positions in the examples below "
        f"come from the pipeline's own per-chunk draw):\n  {marked}"
    )


def show_objective(
    *,
    name: str,
    text: str,
    knobs: Mapping[str, object] | None = None,
    inputs_length: int = 64,
    targets_length: int | None = None,
    seed: int = 0,
    vocabulary: seqio.Vocabulary | None = None,
) -> str:
    """The objective applied to `text`: tokens, noise mask, and each example's inputs/targets."""
    objective = registry.get(name)
    all_knobs = _check_knobs(objective, knobs or {})
    vocabulary = vocabulary or get_vocabulary()
    targets_length = targets_length or 4 * inputs_length
    examples = run_objective(
        name=name,
        text=text,
        knobs=knobs,
        inputs_length=inputs_length,
        targets_length=targets_length,
        seed=seed,
        vocabulary=vocabulary,
    )
    tokens = np.asarray(vocabulary.encode(text), np.int32)
    lines = [
        f"objective: {objective.name} ({objective.paper})",
        f"  {objective.summary}",
        f"knobs: {knobs_text(all_knobs)}",
        f"lengths: inputs {inputs_length}, targets {targets_length}; seed {seed}",
        "",
        f"text tokens ({len(tokens)}):",
        "  " + " ".join(piece(vocabulary, t) for t in tokens),
    ]
    if objective.noise_mask is not None and len(tokens):
        lines.append(
            _noise_mask_line(objective, tokens, knobs=all_knobs, seed=seed, vocabulary=vocabulary)
        )
    shown = examples[:MAX_EXAMPLES]
    more = " (more not shown)" if len(examples) > MAX_EXAMPLES else ""
    lines.append(f"\nexamples: {len(shown)}{more}")
    for i, ex in enumerate(shown, start=1):
        lines.append(f"\nexample {i}")
        for key in ("inputs", "targets"):
            if key not in ex:
                continue
            ids = ex[key]
            lines += [
                f"{key} ({len(ids)} tokens): {decode_visible(vocabulary, ids)}",
                "  pieces: " + " ".join(piece(vocabulary, t) for t in ids),
            ]
    return "\n".join(lines)
