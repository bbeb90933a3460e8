"""Each metric against a value worked out by hand on a small fixed example."""

import math

import pytest

from t5lab.eval import metrics


def test_accuracy_counts_equal_pairs():
    assert metrics.accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == {"accuracy": 50.0}


def test_exact_match_is_per_example():
    result = metrics.exact_match(["a b", "c", "d"], ["a b", "c ", "d"])
    assert result["exact_match"] == pytest.approx(200 / 3)


def test_f1_of_the_positive_class():
    # tp=2 (idx 0, 2), fp=1 (idx 3), fn=1 (idx 1): precision 2/3, recall 2/3 -> F1 2/3.
    result = metrics.f1([1, 1, 1, 0, 0], [1, 0, 1, 1, 0])
    assert result["f1"] == pytest.approx(200 / 3)


def test_f1_counts_an_invalid_prediction_as_wrong():
    # The -1 on a positive target becomes a miss (fn): tp=1, fn=1, fp=0 -> F1 = 2/3.
    result = metrics.f1([1, 1, 0], [1, -1, 0])
    assert result["f1"] == pytest.approx(200 / 3)
    # ... and on a negative target a false positive: tp=1, fp=1 -> F1 = 2/3.
    assert metrics.f1([1, 0], [1, -1])["f1"] == pytest.approx(200 / 3)


def test_mean_multiclass_f1_averages_every_class():
    # Class 0: tp=1 fp=0 fn=1 -> 2/3; class 1: tp=1 fp=1 fn=0 -> 2/3; class 2 never seen -> 0.
    fn = metrics.mean_multiclass_f1(num_classes=3)
    result = fn([0, 0, 1], [0, 1, 1])
    assert result == {"mean_3class_f1": pytest.approx(100 * (2 / 3 + 2 / 3 + 0) / 3)}


def test_matthews_corrcoef_by_hand():
    # tp=2 tn=1 fp=1 fn=0: (2*1 - 1*0) / sqrt(3*2*2*1) = 2 / sqrt(12).
    result = metrics.matthews_corrcoef([1, 1, 0, 0], [1, 1, 1, 0])
    assert result["matthews_corrcoef"] == pytest.approx(100 * 2 / math.sqrt(12))


def test_pearson_and_spearman_by_hand():
    targets, predictions = [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]
    # Pearson: centred (-1,0,1) and (-1,1,0): 1 / (sqrt(2) * sqrt(2)) = 0.5; ranks equal values.
    assert metrics.pearson_corrcoef(targets, predictions)["pearson_corrcoef"] == pytest.approx(50)
    assert metrics.spearman_corrcoef(targets, predictions)["spearman_corrcoef"] == pytest.approx(50)
    # Spearman sees ranks only: a monotone but non-linear prediction is a perfect 100.
    monotone = metrics.spearman_corrcoef([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 9.0, 100.0])
    assert monotone["spearman_corrcoef"] == pytest.approx(100)


def test_correlation_of_a_constant_prediction_is_zero_not_nan():
    assert metrics.pearson_corrcoef([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == {"pearson_corrcoef": 0.0}


def test_bleu_by_hand():
    # A 5-word hypothesis against a 6-word reference: brevity penalty exp(1 - 6/5); "on mat"
    # is no reference bigram, so n-gram precisions are 5/5, 3/4, 2/3, 1/2.
    result = metrics.bleu(["the cat sat on the mat"], ["the cat sat on mat"])
    expected = math.exp(1 - 6 / 5) * (1 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25 * 100
    assert result["bleu"] == pytest.approx(expected, abs=1e-6)


def test_bleu_takes_several_references_per_example():
    single = metrics.bleu(["a b c d e"], ["a b c d x"])["bleu"]
    both = metrics.bleu([["a b c d e", "a b c d x"]], ["a b c d x"])["bleu"]
    assert single < 100 and both == pytest.approx(100)


def test_rouge_by_hand():
    # Unigrams: 2 of 3 shared -> P = R = F = 2/3; bigrams: "the cat" shared of 2 -> 1/2.
    result = metrics.rouge(["the cat sat"], ["the cat ran"])
    assert result["rouge1"] == pytest.approx(200 / 3)
    assert result["rouge2"] == pytest.approx(50)
    assert result["rougeLsum"] == pytest.approx(200 / 3)


def test_rouge_stems_words():
    result = metrics.rouge(["cats running"], ["cat runs"])
    assert result["rouge1"] == pytest.approx(100)


def test_squad_normalises_and_takes_the_best_reference():
    # Example 1: "The Eiffel Tower!" normalises to "eiffel tower" = reference 2: EM 1, F1 1.
    # Example 2: "in Paris France" vs "Paris": EM 0; F1 = 2 * (1/3 * 1) / (1/3 + 1) = 0.5.
    result = metrics.squad(
        [["a tower", "Eiffel tower"], ["Paris"]],
        ["The Eiffel Tower!", "in Paris France"],
    )
    assert result["em"] == pytest.approx(50)
    assert result["f1"] == pytest.approx(75)
