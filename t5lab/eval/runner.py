"""`evaluate` and `infer`: what the CLI runs against a trained checkpoint."""

from collections.abc import Mapping, Sequence

import jax
import numpy as np

from t5lab.data.pipeline import first_batches, output_vocabulary
from t5lab.data.vocab import encode_with_sentinels
from t5lab.errors import UserError
from t5lab.eval.decoding import make_decode_fn
from t5lab.models import T5Config
from t5lab.models.electra import ElectraConfig
from t5lab.train.checkpoints import restore_run_params
from t5lab.train.steps import evaluate_batches
from t5lab.train.trainer import config_for_task, model_and_steps


def _load(model_dir: str, model_config: T5Config | ElectraConfig, task: str, step: int | None):
    config = config_for_task(model_config, mixture_or_task_name=task)
    params, step = restore_run_params(model_dir=model_dir, step=step)
    model, step_fns = model_and_steps(config)
    return model, step_fns, params, step


def evaluate(
    *,
    model_dir: str,
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    model_config: T5Config | ElectraConfig,
    batch_size: int = 32,
    split: str = "validation",
    eval_batches: int = 4,
    checkpoint_step: int | None = None,
    pack: bool = True,
    seed: int = 0,
) -> dict:
    """Token loss and accuracy of a checkpoint on the first `eval_batches` batches of a split."""
    model, step_fns, params, step = _load(
        model_dir, model_config, mixture_or_task_name, checkpoint_step
    )
    batches = first_batches(
        mixture_or_task_name=mixture_or_task_name,
        task_feature_lengths=task_feature_lengths,
        split=split,
        batch_size=batch_size,
        count=eval_batches,
        pack=pack,
        seed=seed,
    )
    result = evaluate_batches(step_fns.make_eval_step(model=model), params, batches)
    return {"step": step, "split": split, **result}


def infer(
    *,
    model_dir: str,
    mixture_or_task_name: str,
    model_config: T5Config,
    inputs: Sequence[str],
    max_input_length: int = 512,
    max_decode_length: int = 64,
    checkpoint_step: int | None = None,
) -> list[str]:
    """Greedy decoding of each input text with the task's vocabulary."""
    if not inputs:
        raise UserError("nothing to decode: pass --text or --input_file")
    if isinstance(model_config, ElectraConfig):
        raise UserError("infer decodes text: ELECTRA's discriminator is an encoder, not a decoder")
    vocabulary = output_vocabulary(mixture_or_task_name)
    model, _, params, _ = _load(model_dir, model_config, mixture_or_task_name, checkpoint_step)
    encoded = [
        encode_with_sentinels(vocabulary, text)[: max_input_length - 1] + [1] for text in inputs
    ]
    length = max(len(ids) for ids in encoded)
    tokens = np.zeros((len(encoded), length), np.int32)
    for row, ids in enumerate(encoded):
        tokens[row, : len(ids)] = ids
    decode = make_decode_fn(model=model, method="greedy", max_decode_length=max_decode_length)
    decoded = decode(params, jax.numpy.asarray(tokens), jax.random.PRNGKey(0))
    results = []
    for row in np.asarray(decoded):
        ids = [int(i) for i in row]
        if 1 in ids:
            ids = ids[: ids.index(1)]
        results.append(vocabulary.decode([i for i in ids if i > 0]))
    return results
