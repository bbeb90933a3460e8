"""T5's downstream metrics as seqio metric functions: `fn(targets, predictions) -> {name: value}`.

Values are percentages, as the T5 paper reports them. seqio passes `targets` and `predictions`
by keyword after the task's postprocess_fn has run on both, so classification metrics see class
ids, regression metrics floats and generation metrics strings. The statistics come from
scikit-learn, scipy, sacrebleu and rouge-score; only SQuAD's answer normalisation and token F1
(a definition, not a library) are spelled out here.
"""

import collections
import re
import string
from collections.abc import Callable, Sequence

import numpy as np
import sacrebleu
import scipy.stats
from rouge_score import rouge_scorer
from sklearn import metrics as sk_metrics

MetricFn = Callable[..., dict[str, float]]


def accuracy(targets: Sequence, predictions: Sequence) -> dict[str, float]:
    """Share of predictions equal to their target."""
    return {"accuracy": 100.0 * sk_metrics.accuracy_score(targets, predictions)}


def exact_match(targets: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
    """Share of predicted strings identical to the target (T5's `sequence_accuracy`).

    T5's own `exact_match` is all-or-nothing over the whole set; the per-example rate is the
    number people compare.
    """
    matches = [str(t) == str(p) for t, p in zip(targets, predictions, strict=True)]
    return {"exact_match": 100.0 * float(np.mean(matches)) if matches else 0.0}


def f1(targets: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
    """Binary F1 of class 1 (MRPC/QQP style).

    A prediction that is neither 0 nor 1 (an unparseable answer, -1) counts as wrong: it becomes
    the opposite of its target, as in T5's `f1_score_with_invalid`.
    """
    targets_arr = np.asarray(targets, dtype=np.int64)
    predictions_arr = np.asarray(predictions, dtype=np.int64).copy()
    invalid = (predictions_arr != 0) & (predictions_arr != 1)
    predictions_arr[invalid] = 1 - targets_arr[invalid]
    score = sk_metrics.f1_score(targets_arr, predictions_arr, zero_division=0.0)
    return {"f1": 100.0 * float(score)}


def mean_multiclass_f1(*, num_classes: int) -> MetricFn:
    """Unweighted mean of per-class F1 over classes 0..num_classes-1 (T5's MultiRC/CB metric)."""

    def mean_f1(targets: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
        score = sk_metrics.f1_score(
            targets,
            predictions,
            labels=list(range(num_classes)),
            average="macro",
            zero_division=0.0,
        )
        return {f"mean_{num_classes}class_f1": 100.0 * float(score)}

    mean_f1.__name__ = f"mean_{num_classes}class_f1"
    return mean_f1


def matthews_corrcoef(targets: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
    """Matthews correlation (CoLA)."""
    return {"matthews_corrcoef": 100.0 * sk_metrics.matthews_corrcoef(targets, predictions)}


def pearson_corrcoef(targets: Sequence[float], predictions: Sequence[float]) -> dict[str, float]:
    """Pearson correlation (STS-B); 0 when either side is constant (undefined correlation)."""
    return {"pearson_corrcoef": 100.0 * _correlation(scipy.stats.pearsonr, targets, predictions)}


def spearman_corrcoef(targets: Sequence[float], predictions: Sequence[float]) -> dict[str, float]:
    """Spearman rank correlation (STS-B); 0 when either side is constant."""
    return {"spearman_corrcoef": 100.0 * _correlation(scipy.stats.spearmanr, targets, predictions)}


def _correlation(statistic: Callable, targets: Sequence, predictions: Sequence) -> float:
    x = np.asarray(targets, dtype=np.float64)
    y = np.asarray(predictions, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0  # an untrained model answering one constant: scipy would warn and give nan
    return float(statistic(x, y)[0])


def bleu(targets: Sequence, predictions: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU with T5's sacrebleu settings ("exp" smoothing, "intl" tokenisation).

    Each target is one reference string, or a list of references (same count for every example).
    """
    if targets and isinstance(targets[0], list | tuple):
        references = [list(refs) for refs in zip(*targets, strict=True)]
    else:
        references = [list(targets)]
    score = sacrebleu.corpus_bleu(
        list(predictions),
        references,
        smooth_method="exp",
        smooth_value=0.0,
        force=False,
        lowercase=False,
        tokenize="intl",
        use_effective_order=False,
    )
    return {"bleu": float(score.score)}


def rouge(
    targets: Sequence[str],
    predictions: Sequence[str],
    score_keys: Sequence[str] = ("rouge1", "rouge2", "rougeLsum"),
) -> dict[str, float]:
    """Mean ROUGE F-measures with Porter stemming; rougeLsum treats newlines as sentence ends.

    T5 reports the middle of a bootstrap over examples; the plain mean is what that estimates,
    without the randomness.
    """
    scorer = rouge_scorer.RougeScorer(list(score_keys), use_stemmer=True)
    totals = dict.fromkeys(score_keys, 0.0)
    count = 0
    for target, prediction in zip(targets, predictions, strict=True):
        scores = scorer.score(_sentence_per_line(target), _sentence_per_line(prediction))
        for key in score_keys:
            totals[key] += scores[key].fmeasure
        count += 1
    return {key: 100.0 * total / max(count, 1) for key, total in totals.items()}


def _sentence_per_line(text: str) -> str:
    """T5's summary preparation: " . " ends a sentence, so rougeLsum can see it."""
    return text.replace(" . ", " .\n")


def squad(targets: Sequence[Sequence[str]], predictions: Sequence[str]) -> dict[str, float]:
    """SQuAD exact match and token F1, each the best over an example's reference answers."""
    em_scores, f1_scores = [], []
    for answers, prediction in zip(targets, predictions, strict=True):
        answers = [answers] if isinstance(answers, str) else list(answers)
        em_scores.append(max(_squad_em(answer, prediction) for answer in answers))
        f1_scores.append(max(_squad_f1(answer, prediction) for answer in answers))
    count = max(len(em_scores), 1)
    return {"em": 100.0 * sum(em_scores) / count, "f1": 100.0 * sum(f1_scores) / count}


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_squad(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the official SQuAD script's)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _squad_em(answer: str, prediction: str) -> float:
    return float(normalize_squad(answer) == normalize_squad(prediction))


def _squad_f1(answer: str, prediction: str) -> float:
    answer_tokens = normalize_squad(answer).split()
    prediction_tokens = normalize_squad(prediction).split()
    if not answer_tokens or not prediction_tokens:
        return float(answer_tokens == prediction_tokens)
    common = collections.Counter(answer_tokens) & collections.Counter(prediction_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(prediction_tokens)
    recall = overlap / len(answer_tokens)
    return 2 * precision * recall / (precision + recall)
