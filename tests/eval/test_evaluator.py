"""Task metrics through seqio.Evaluator, best-checkpoint selection, and `t5lab eval --metrics`."""

import difflib
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import seqio
import tensorflow as tf

from t5lab.cli import EXIT_USER_ERROR, main
from t5lab.data.vocab import get_vocabulary
from t5lab.errors import UserError
from t5lab.eval.evaluator import evaluate_metrics, metric_value, select_best_checkpoint
from t5lab.eval.greedy import greedy_decode
from t5lab.models.t5 import T5Transformer
from t5lab.train.checkpoints import Checkpointer
from tests.conftest import FIXTURES, MICRO_CONFIG

LENGTHS = {"inputs": 16, "targets": 8}
VOCABULARY = get_vocabulary()
CONFIG = MICRO_CONFIG.with_vocab_size(8192)  # what the trainer derives from VOCABULARY
COPY_TASK = "t5lab_test_eval_copy"
PICK_TASK = "t5lab_test_eval_pick"
SENTENCES = {
    "validation": [
        "the people of the union",
        "congress shall act",
        "our economy is strong",
        "we must protect the nation",
        "taxes and trade",
    ],
    "test": ["the state of the union", "peace abroad", "jobs at home"],
}
SEEN: dict[str, list] = {}  # what seqio handed the metric functions, for comparison


def _similarity(targets, predictions):
    SEEN["targets"], SEEN["predictions"] = list(targets), list(predictions)
    pairs = zip(targets, predictions, strict=True)
    ratios = [difflib.SequenceMatcher(None, t, p).ratio() for t, p in pairs]
    return {"similarity": float(np.mean(ratios))}


def _exact(targets, predictions):
    return {"exact": float(np.mean([t == p for t, p in zip(targets, predictions, strict=True)]))}


def _mean_log_likelihood(targets, scores):
    SEEN["scores"] = list(scores)
    return {"log_likelihood": float(np.mean(scores))}


def _register(name: str, examples: dict[str, list[tuple[str, str]]], metric_fns: list) -> None:
    def dataset_fn(split, shuffle_files, seed=None):
        del shuffle_files, seed
        inputs, targets = zip(*examples[split], strict=True)
        return tf.data.Dataset.from_tensor_slices(
            {"inputs": list(inputs), "targets": list(targets)}
        )

    if name in seqio.TaskRegistry.names():
        seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(
            dataset_fn,
            splits=tuple(examples),
            num_input_examples={split: len(rows) for split, rows in examples.items()},
        ),
        preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
        output_features={
            "inputs": seqio.Feature(VOCABULARY, add_eos=True),
            "targets": seqio.Feature(VOCABULARY, add_eos=True),
        },
        metric_fns=metric_fns,
    )


_register(
    COPY_TASK,
    {split: [(s, s) for s in sentences] for split, sentences in SENTENCES.items()},
    [_similarity, _mean_log_likelihood],
)


def _random_params(seed: int):
    model = T5Transformer(CONFIG)
    tokens = jnp.ones((1, 4), jnp.int32)
    variables = model.init(jax.random.PRNGKey(seed), tokens, tokens, enable_dropout=False)
    return nn.unbox(variables)["params"]


def _always_emitting(params, token: int):
    """Params whose greedy decoder emits `token` at every step, whatever the input: the
    decoder's residual stream is reduced to the token embedding, whose first coordinate is 1,
    and only that coordinate reaches the logits, and only `token`'s logit."""
    params = jax.tree.map(np.array, params)
    layer = params["decoder"]["layers_0"]
    for block in ("self_attention", "encoder_decoder_attention"):
        layer[block]["out"]["kernel"][:] = 0
    layer["mlp"]["wo"]["kernel"][:] = 0
    params["token_embedder"]["embedding"][:, 0] = 1.0
    params["decoder"]["decoder_norm"]["scale"][:] = 0
    params["decoder"]["decoder_norm"]["scale"][0] = 1.0
    logits = params["decoder"]["logits_dense"]["kernel"]
    logits[:] = 0
    logits[0, token] = 1.0
    return params


def _save(model_dir, step_params: dict[int, object]) -> None:
    checkpointer = Checkpointer(model_dir=str(model_dir), keep=3)
    for step, params in step_params.items():
        checkpointer.save(step=step, state={"params": params}, iterator=None)
    checkpointer.close()


@pytest.fixture(scope="module")
def random_run(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("random_run")
    params = _random_params(seed=0)
    _save(model_dir, {3: params})
    return model_dir, params


def _decode_by_hand(params, texts: list[str]) -> list[str]:
    tokens = np.zeros((len(texts), LENGTHS["inputs"]), np.int32)
    for row, text in enumerate(texts):
        ids = VOCABULARY.encode(text)[: LENGTHS["inputs"] - 1] + [1]
        tokens[row, : len(ids)] = ids
    decoded = greedy_decode(
        model=T5Transformer(CONFIG),
        params=params,
        encoder_input_tokens=jnp.asarray(tokens),
        max_decode_length=LENGTHS["targets"],
    )
    return [VOCABULARY.decode(row.tolist()) for row in np.asarray(decoded)]


def _log_likelihood_by_hand(params, texts: list[str]) -> list[float]:
    """Sum of log p(target token) over each text's tokens and EOS, in one padded batch."""
    encoder = np.zeros((len(texts), LENGTHS["inputs"]), np.int32)
    targets = np.zeros((len(texts), LENGTHS["targets"]), np.int32)
    for row, text in enumerate(texts):
        for array in (encoder, targets):
            ids = VOCABULARY.encode(text)[: array.shape[1] - 1] + [1]
            array[row, : len(ids)] = ids
    decoder_inputs = np.pad(targets[:, :-1], ((0, 0), (1, 0)))
    logits = T5Transformer(CONFIG).apply(
        {"params": params}, encoder, decoder_inputs, targets, enable_dropout=False
    )
    log_probs = np.asarray(jax.nn.log_softmax(logits, axis=-1))
    rows, positions = np.nonzero(targets)
    scores = np.zeros(len(texts))
    np.add.at(scores, rows, log_probs[rows, positions, targets[rows, positions]])
    return scores.tolist()


def test_metrics_equal_the_metric_of_independently_decoded_texts(random_run):
    model_dir, params = random_run
    result = evaluate_metrics(
        model_dir=str(model_dir),
        mixture_or_task_name=COPY_TASK,
        task_feature_lengths=LENGTHS,
        model_config=MICRO_CONFIG,
        split="validation",
        batch_size=2,  # 5 examples: the last batch is padded
    )
    texts = SENTENCES["validation"]
    expected = _decode_by_hand(params, texts)
    assert len(set(expected)) > 1  # otherwise the order of predictions would go unchecked
    assert SEEN["predictions"] == expected and SEEN["targets"] == texts
    assert result["step"] == 3 and result["split"] == "validation"
    metrics = result["tasks"][COPY_TASK]
    assert metrics["similarity"] == pytest.approx(_similarity(texts, expected)["similarity"])
    np.testing.assert_allclose(SEEN["scores"], _log_likelihood_by_hand(params, texts), rtol=1e-4)
    assert metrics["log_likelihood"] == pytest.approx(np.mean(SEEN["scores"]))


def test_best_validation_checkpoint_is_reported_on_test(tmp_path):
    the, people = VOCABULARY.encode("the")[-1], VOCABULARY.encode("people")[-1]
    repeated_the = VOCABULARY.decode([the] * LENGTHS["targets"])
    assert repeated_the and repeated_the != VOCABULARY.decode([people] * LENGTHS["targets"])
    # Validation rewards answering "the the ...", test rewards stopping at once: choosing on
    # test would pick another step than choosing on validation.
    _register(
        PICK_TASK,
        {
            "validation": [(s, repeated_the) for s in SENTENCES["validation"]],
            "test": [(s, "") for s in SENTENCES["test"]],
        },
        [_exact],
    )
    base = _random_params(seed=1)
    _save(tmp_path, {s: _always_emitting(base, t) for s, t in {1: 1, 2: the, 3: people}.items()})
    common = dict(
        model_dir=str(tmp_path),
        mixture_or_task_name=PICK_TASK,
        task_feature_lengths=LENGTHS,
        model_config=MICRO_CONFIG,
        batch_size=4,
    )

    best = select_best_checkpoint(metric=f"{PICK_TASK}/exact", **common)
    assert [(v["step"], v["value"]) for v in best["validation"]] == [(1, 0.0), (2, 1.0), (3, 0.0)]
    assert best["best_step"] == 2 and best["test"]["step"] == 2
    assert best["test"]["split"] == "test" and best["test"]["value"] == 0.0

    worst = select_best_checkpoint(metric="exact", higher_is_better=False, **common)
    assert worst["best_step"] == 1 and worst["test"]["value"] == 1.0  # tie 1/3: earliest


def test_metric_names():
    tasks = {"a": {"x": 1.0, "y": 3.0}, "b": {"x": 0.0}}
    assert metric_value(tasks, "a/y") == 3.0 and metric_value(tasks, "y") == 3.0
    assert metric_value(tasks, "average") == 1.0  # mean of a's mean (2) and b's (0)
    with pytest.raises(UserError, match="unknown metric 'x'"):
        metric_value(tasks, "x")  # two tasks report x: ambiguous


def test_cli_prints_task_metrics_as_json(random_run, capsys):
    model_dir, _ = random_run
    flags = [
        f"--gin_file={FIXTURES / 'micro.gin'}",
        f"--gin.MODEL_DIR={model_dir}",
        f"--gin.MIXTURE_OR_TASK_NAME='{COPY_TASK}'",
        f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
        "--gin.BATCH_SIZE=4",
    ]
    assert main(["eval", *flags, "--metrics", "--split", "test"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 3 and result["split"] == "test"
    assert set(result["tasks"][COPY_TASK]) == {"similarity", "log_likelihood"}
    assert (
        main(["eval", *flags, "--metrics", "--best_of", "validation", "--metric", "similarity"])
        == 0
    )
    best = json.loads(capsys.readouterr().out)
    assert best["best_step"] == 3 and best["test"]["tasks"] == result["tasks"]

    for args, start, end in [
        (["--metrics", "--checkpoint_step", "7"], "no checkpoint of step 7 in ", "steps: 3)"),
        (["--metrics", "--decode", "beam", "--beam_size", "0"], "beam_size must be", "got 0"),
        (["--decode", "beam"], "--decode needs --metrics", ""),
    ]:
        assert main(["eval", *flags, *args]) == EXIT_USER_ERROR
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"t5lab: error: {start}")
        assert err[0].endswith(end)
