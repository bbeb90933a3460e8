"""Sharded training scenarios on 8 CPU devices, run once per test session (sharded_results.py).

The device count must be set before JAX starts, which a pytest process (with many tests
already run) cannot do; so this script trains the micro model under every strategy, checks
its checkpoints on other meshes, and prints one JSON object for the tests to assert on.
Usage: python tests/train/sharded_scenarios.py WORK_DIR
"""

import contextlib
import json
import os
import sys
from pathlib import Path

import jax

jax.config.update("jax_num_cpu_devices", 8)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

import tasks  # noqa: E402, F401  (registers sotu_span_corruption)
from t5lab.errors import UserError  # noqa: E402
from t5lab.models import T5Transformer  # noqa: E402
from t5lab.train import partitioning as sharding  # noqa: E402
from t5lab.train import steps  # noqa: E402
from t5lab.train.checkpoints import Checkpointer  # noqa: E402
from t5lab.train.trainer import resolve_model_config, train  # noqa: E402
from tests.conftest import MICRO_CONFIG  # noqa: E402
from tests.train.sharded_settings import LENGTHS, OPTIMIZER, STEPS, train_kwargs  # noqa: E402

STRATEGIES = {
    "one_device": ({"data": 1}, "data_parallel", 1),
    "data_parallel": ({"data": 8}, "data_parallel", 1),
    "fsdp": ({"fsdp": 8}, "fsdp", 1),
    "model_parallel": ({"model": 2}, "model_parallel", 1),
    "2d_microbatched": ({"data": 4, "model": 2}, "model_parallel", 2),
    "fsdp_model_parallel": ({"fsdp": 4, "model": 2}, "fsdp_model_parallel", 1),
}


def _train(model_dir, mesh_shape, rules, **overrides):
    return train(**train_kwargs(model_dir, mesh_shape=mesh_shape, rules=rules, **overrides))


@contextlib.contextmanager
def _kept_out_of_the_compilation_cache():
    """XLA:CPU (jax 0.10.2) deadlocks in the all-reduces of a loop (the microbatch scan) when
    the executable comes from the persistent cache; compiled afresh it runs. Programs
    compiled here are not written to the cache, so they are compiled afresh every time."""
    name = "jax_persistent_cache_min_compile_time_secs"
    previous = getattr(jax.config, name)
    jax.config.update(name, 1e9)
    try:
        yield
    finally:
        jax.config.update(name, previous)


def _train_metrics(model_dir):
    lines = [json.loads(line) for line in open(os.path.join(model_dir, "metrics.jsonl"))]
    return [
        {"step": m["step"], "loss": m["loss"], "param_norm": m["param_norm"]}
        for m in lines
        if m["split"] == "train"
    ]


def _abstract(mesh, rules):
    """Abstract train state and its shardings for the micro model on `mesh`."""
    config = resolve_model_config(MICRO_CONFIG, vocabulary_size=8100)
    model = T5Transformer(config)
    shapes = {
        "encoder_input_tokens": (8, LENGTHS["inputs"]),
        "decoder_input_tokens": (8, LENGTHS["targets"]),
    }
    rng = jax.random.PRNGKey(0)
    init = steps.init_state_fn(model=model, tx=OPTIMIZER, input_shapes=shapes)
    abstract_state = jax.eval_shape(init, rng)
    shardings = sharding.step_shardings(
        mesh=mesh,
        rules=rules,
        abstract_variables=jax.eval_shape(
            steps.init_variables_fn(model=model, input_shapes=shapes), rng
        ),
        abstract_state=abstract_state,
    )
    return abstract_state, shardings


def _restore(model_dir, mesh_shape, rules_name):
    layout = sharding.partitioning(mesh_shape=mesh_shape, logical_axis_rules=rules_name)
    mesh = sharding.make_mesh(layout=layout)
    abstract, shardings = _abstract(mesh, layout.rules)
    checkpointer = Checkpointer(model_dir=str(model_dir))
    try:
        target = sharding.with_shardings(abstract, shardings.state)
        state = checkpointer.restore(step=STEPS, abstract_state=target, iterator=None)
    finally:
        checkpointer.close()
    return state, abstract, mesh


def _bytes_on(device, tree) -> int:
    return sum(
        shard.data.nbytes
        for leaf in jax.tree.leaves(tree)
        for shard in leaf.addressable_shards
        if shard.device == device
    )


def _spec(leaf) -> list:
    return [list(a) if isinstance(a, tuple) else a for a in leaf.sharding.spec]


def main(work: Path) -> dict:
    result: dict = {"losses": {}}
    for name, (mesh_shape, rules, micro) in STRATEGIES.items():
        uncached = _kept_out_of_the_compilation_cache() if micro > 1 else contextlib.nullcontext()
        with uncached:
            _train(work / name, mesh_shape, rules, num_microbatches=micro)
        result["losses"][name] = _train_metrics(work / name)

    # FSDP: what one device really holds, against the shapes-only prediction.
    state, abstract, mesh = _restore(work / "fsdp", {"fsdp": 8}, "fsdp")
    device = mesh.devices.flat[0]
    specs = jax.tree.map(lambda x: x.sharding.spec, state)
    embedding = state.params["token_embedder"]["embedding"]
    factored = state.opt_state[0]  # optax.adafactor: (FactoredState, ...)
    factors = [f["token_embedder"]["embedding"] for f in (factored.v_row, factored.v_col)]
    result["fsdp"] = {
        "param_bytes_total": sum(x.nbytes for x in jax.tree.leaves(state.params)),
        "param_bytes_device0": _bytes_on(device, state.params),
        "param_bytes_predicted": sharding.per_device_bytes(
            abstract_tree=abstract.params, specs=specs.params, mesh_sizes=dict(mesh.shape)
        ),
        "state_bytes_device0": _bytes_on(device, state),
        "state_bytes_predicted": sharding.per_device_bytes(
            abstract_tree=abstract, specs=specs, mesh_sizes=dict(mesh.shape)
        ),
        "embedding_spec": _spec(embedding),
        "embedding_factors": [[list(f.shape), _spec(f)] for f in factors],
    }

    # The 4x2 (data x model) checkpoint, restored on 8x1 and on one device.
    restored = {}
    for label, mesh_shape in (("8x1", {"data": 8, "model": 1}), ("1x1", {"data": 1})):
        state, _, _ = _restore(work / "2d_microbatched", mesh_shape, "model_parallel")
        restored[label] = state
    mlp = restored["8x1"].params["encoder"]["layers_0"]["mlp"]["wo"]["kernel"]
    result["restore"] = {
        "devices_8x1": len(mlp.sharding.device_set),
        "devices_1x1": len(
            restored["1x1"].params["encoder"]["layers_0"]["mlp"]["wo"]["kernel"].sharding.device_set
        ),
        "equal": all(
            np.array_equal(a, b)
            for a, b in zip(
                jax.tree.leaves(restored["8x1"]), jax.tree.leaves(restored["1x1"]), strict=True
            )
        ),
        "step": int(restored["1x1"].step),
    }
    # Same mesh and rules as the data-parallel run: its compiled step comes from the cache.
    resumed = _train(work / "2d_microbatched", {"data": 8}, "data_parallel", train_steps=STEPS + 1)
    result["restore"]["resumed"] = [resumed.start_step, resumed.final_step]

    errors = {}
    for label, mesh_shape, rules, batch in (
        ("batch", {"data": 8}, "data_parallel", 12),
        ("mesh", {"data": 16}, "data_parallel", 8),
        ("heads", {"model": 8}, "model_parallel", 8),
    ):
        try:
            _train(work / f"error_{label}", mesh_shape, rules, batch_size=batch)
            errors[label] = None
        except UserError as error:
            errors[label] = str(error)
    result["errors"] = errors
    return result


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(Path(sys.argv[1]))))
