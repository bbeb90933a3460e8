"""T5's text-to-text formats for the paper's downstream tasks (Raffel et al. 2020, appendix D).

Every task becomes a string `inputs` with a task prefix and a string `targets`; classification
targets are the label *names* ("entailment", "acceptable"), so one decoder serves every task.
These are seqio preprocessors: each takes a `tf.data.Dataset` of raw tfds examples (plus
keyword options, bound with `functools.partial`) and returns one of `inputs`/`targets` strings
with whatever the task's postprocessor needs for evaluation (`idx`, `answers`, `label`, ...).
"""

from collections.abc import Sequence

import seqio
import tensorflow as tf

UNKNOWN_LABEL = "<unk>"  # target of unlabelled (test) examples, whose tfds label is -1
LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "ro": "Romanian"}
_REGEX_SPECIAL = r"([.^$*+?()\[\]{}|\\])"


def pad_punctuation(text: tf.Tensor) -> tf.Tensor:
    """Surround every punctuation mark with spaces and collapse whitespace, as T5 does for QA.

    Keeps answers tokenised the same way wherever they sit in the context.
    """
    text = tf.strings.regex_replace(text, r"([^_\s\p{N}\p{L}\p{M}])", r" \1 ")
    return tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))


def _label_name(label: tf.Tensor, label_names: Sequence[str]) -> tf.Tensor:
    label = tf.cast(label, tf.int32)
    names = tf.constant(list(label_names))
    return tf.cond(
        tf.equal(label, -1),
        lambda: tf.constant(UNKNOWN_LABEL),
        lambda: tf.gather(names, label),
    )


def _join_features(example: dict, *, prefix: str, feature_names: Sequence[str]) -> tf.Tensor:
    parts = [tf.constant(prefix)]
    for name in feature_names:
        parts += [tf.constant(f"{name}:"), example[name]]
    return tf.strings.join(parts, separator=" ")


@seqio.map_over_dataset
def glue(
    x: dict,
    *,
    benchmark_name: str,
    label_names: Sequence[str],
    feature_names: Sequence[str] | None = None,
) -> dict:
    """`<benchmark> <feature>: <text> ...` -> label name; features sorted unless given.

    MultiRC's paragraph loses its HTML (`<br>`, `<b>`) and its nested `idx` becomes
    `idx/paragraph`, `idx/question`, `idx/answer` (the question groups its answers in eval).
    """
    x = dict(x)
    names = list(feature_names or sorted(set(x) - {"label", "idx"}))
    out = {}
    if benchmark_name == "multirc":
        paragraph = tf.strings.regex_replace(x["paragraph"], "<br>", " ")
        x["paragraph"] = tf.strings.regex_replace(paragraph, "<(/)?b>", "")
        for part in ("paragraph", "question", "answer"):
            out[f"idx/{part}"] = x["idx"][part]
    elif "idx" in x:
        out["idx"] = x["idx"]
    out["inputs"] = _join_features(x, prefix=benchmark_name, feature_names=names)
    out["targets"] = _label_name(x["label"], label_names)
    return out


@seqio.map_over_dataset
def stsb(x: dict) -> dict:
    """STS-B as text: the 0-5 similarity score rounded to the nearest 0.2, e.g. "3.8".

    Rounding to 0.2 turns regression into 26 classes the decoder can spell.
    """
    score = tf.round(tf.cast(x["label"], tf.float32) * 5.0) / 5.0
    return {
        "inputs": _join_features(x, prefix="stsb", feature_names=("sentence1", "sentence2")),
        "targets": tf.strings.as_string(score, precision=1),
        "idx": x["idx"],
    }


def _mark_word(text: tf.Tensor, *, word: tf.Tensor, index: tf.Tensor, mark: str) -> tf.Tensor:
    """Wrap `word` (at whitespace-word position `index`) in `mark`; unchanged if it isn't there."""
    escaped = tf.strings.regex_replace(word, _REGEX_SPECIAL, r"\\\1")
    pattern = tf.strings.join([r"^((?:\S+\s){", tf.strings.as_string(index), "})(", escaped, ")"])
    return tf.strings.regex_replace(text, pattern, rf"\1{mark} \2 {mark}", replace_global=False)


def wsc_simple(dataset: tf.data.Dataset, *, correct_referent_only: bool) -> tf.data.Dataset:
    """WSC as T5 casts it: `wsc: ... *pronoun* ...` -> the candidate referent's text.

    Training keeps only the candidates that are right (`correct_referent_only`), so the model
    learns to name the referent; evaluation keeps all and asks whether the generated noun
    phrase matches each candidate (`t5lab.eval.superglue_metrics.wsc_simple`).
    """
    if correct_referent_only:
        dataset = dataset.filter(lambda x: tf.equal(tf.cast(x["label"], tf.int32), 1))

    def convert(x):
        text = _mark_word(x["text"], word=x["span2_text"], index=x["span2_index"], mark="*")
        return {
            "inputs": tf.strings.join(["wsc:", text], separator=" "),
            "targets": x["span1_text"],
            "label": tf.cast(x["label"], tf.int32),
            "idx": x["idx"],
        }

    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def record(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """ReCoRD: `record query: ... entities: a, b passage: ...` -> one example per answer.

    Each copy keeps every answer (`answers`) and the query id, so evaluation scores one copy
    per query against all answers; queries without answers get one `<unk>` target.
    """

    def convert(x):
        passage = tf.strings.regex_replace(x["passage"], r"(\.|\?|\!|\"|\')\n@highlight\n", r"\1 ")
        passage = tf.strings.regex_replace(passage, r"\n@highlight\n", ". ")
        entities, _ = tf.unique(x["entities"])
        inputs = tf.strings.join(
            [
                "record query:",
                x["query"],
                "entities:",
                tf.strings.reduce_join(entities, separator=", "),
                "passage:",
                passage,
            ],
            separator=" ",
        )
        return {
            "inputs": inputs,
            "answers": x["answers"],
            "idx/passage": x["idx"]["passage"],
            "idx/query": x["idx"]["query"],
        }

    def one_per_answer(x):
        count = tf.size(x["answers"])
        copies = tf.maximum(count, 1)
        targets = tf.cond(count > 0, lambda: x["answers"], lambda: tf.constant([UNKNOWN_LABEL]))
        return tf.data.Dataset.from_tensor_slices(
            {
                "inputs": tf.fill([copies], x["inputs"]),
                "targets": targets,
                "answers": tf.tile(tf.expand_dims(x["answers"], 0), [copies, 1]),
                "idx/passage": tf.fill([copies], x["idx/passage"]),
                "idx/query": tf.fill([copies], x["idx/query"]),
            }
        )

    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE).flat_map(one_per_answer)


@seqio.map_over_dataset
def squad(x: dict) -> dict:
    """`question: ... context: ...` -> the first answer; all answers kept for the metric."""
    answers = pad_punctuation(x["answers"]["text"])
    first = tf.cond(tf.size(answers) > 0, lambda: answers[0], lambda: tf.constant(""))
    question = pad_punctuation(x["question"])
    context = pad_punctuation(x["context"])
    return {
        "inputs": tf.strings.join(["question:", question, "context:", context], separator=" "),
        "targets": first,
        "answers": answers,
        "id": x["id"],
    }


@seqio.map_over_dataset
def summarize(x: dict, *, article_key: str, summary_key: str) -> dict:
    """`summarize: <article>` -> the summary."""
    return {
        "inputs": tf.strings.join(["summarize:", x[article_key]], separator=" "),
        "targets": x[summary_key],
    }


@seqio.map_over_dataset
def translate(x: dict, *, source_language: str, target_language: str) -> dict:
    """`translate English to German: <en>` -> <de>; languages are tfds feature keys."""
    source = LANGUAGE_NAMES.get(source_language, source_language)
    target = LANGUAGE_NAMES.get(target_language, target_language)
    prefix = f"translate {source} to {target}:"
    return {
        "inputs": tf.strings.join([prefix, x[source_language]], separator=" "),
        "targets": x[target_language],
    }
