"""Sharded training: strategies agree with one device, shardings are real, errors are clear.

Multi-device checks read the results of `sharded_scenarios.py`, run once per session in a
fresh process with 8 CPU devices (the device count is fixed when JAX starts); the rest are
shape-only and run here.
"""

import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

from t5lab import gin_setup
from t5lab.errors import UserError
from t5lab.models import T5Transformer
from t5lab.train import partitioning as sharding
from t5lab.train.host_input import HostSlice, input_layout
from t5lab.train.steps import init_state_fn, init_variables_fn
from tests.conftest import FIXTURES, MICRO_CONFIG
from tests.train.sharded_results import sharded_results

# Different strategies sum in different orders: float32 round-off over 3 Adafactor steps.
RTOL = 1e-4


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    return sharded_results(tmp_path_factory)


@pytest.mark.parametrize(
    "strategy",
    ["data_parallel", "fsdp", "model_parallel", "2d_microbatched", "fsdp_model_parallel"],
)
def test_every_strategy_trains_like_one_device(scenarios, strategy):
    reference = scenarios["losses"]["one_device"]
    sharded = scenarios["losses"][strategy]
    assert [m["step"] for m in sharded] == [m["step"] for m in reference] == [1, 2, 3]
    assert reference[-1]["loss"] < reference[0]["loss"], "the run must actually learn"
    for ours, theirs in zip(sharded, reference, strict=True):
        np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=RTOL)
        np.testing.assert_allclose(ours["param_norm"], theirs["param_norm"], rtol=RTOL)


def test_fsdp_spreads_parameters_and_optimizer_state_over_devices(scenarios):
    fsdp = scenarios["fsdp"]
    assert fsdp["embedding_spec"] == [None, "fsdp"]  # [vocab, embed]
    assert fsdp["param_bytes_device0"] == fsdp["param_bytes_predicted"]
    assert fsdp["state_bytes_device0"] == fsdp["state_bytes_predicted"]
    # Everything with an `embed` dimension is split 8 ways; only small tables stay whole.
    assert fsdp["param_bytes_device0"] * 6 < fsdp["param_bytes_total"]
    # Adafactor's factored moments of the [8192, 32] embedding follow the dim each keeps.
    factors = sorted(fsdp["embedding_factors"])
    assert factors == [[[32], ["fsdp"]], [[8192], [None]]]


def test_checkpoint_from_a_4x2_mesh_restores_on_8x1_and_one_device(scenarios):
    restore = scenarios["restore"]
    assert (restore["devices_8x1"], restore["devices_1x1"]) == (8, 1)
    assert restore["equal"] and restore["step"] == 3
    assert restore["resumed"] == [3, 4]


def test_sharding_mistakes_are_one_line_user_errors(scenarios):
    errors = scenarios["errors"]
    assert "batch_size 12 is not divisible by the data-parallel size 8" in errors["batch"]
    assert "needs 16 devices but only 8 are available" in errors["mesh"]
    assert "'heads' of size 2 does not split over mesh axes 'model' (8 devices)" in errors["heads"]


def test_unknown_mesh_axes_and_rule_sets_are_named():
    with pytest.raises(UserError, match=r"rule 'mlp' -> 'modle' names an unknown mesh axis"):
        sharding.partitioning(logical_axis_rules=[("batch", "data"), ("mlp", "modle")])
    with pytest.raises(UserError, match=r"unknown mesh axis 'dat' \(did you mean 'data'"):
        sharding.partitioning(mesh_shape={"dat": 2})
    with pytest.raises(UserError, match=r"unknown logical_axis_rules 'fsdq' \(did you mean 'fsdp'"):
        sharding.partitioning(logical_axis_rules="fsdq")
    with pytest.raises(UserError, match=r"at most one mesh axis may be -1"):
        sharding.partitioning(mesh_shape={"data": -1, "model": -1})


def test_mesh_shape_fills_the_remaining_devices_and_rejects_too_large():
    layout = sharding.partitioning(mesh_shape={"model": 2, "data": -1})
    assert sharding.resolve_mesh_shape(mesh_shape=layout.mesh_shape, num_devices=8) == {
        "data": 4,
        "fsdp": 1,
        "model": 2,
    }
    with pytest.raises(UserError, match=r"6 devices do not split into 4 x N"):
        sharding.resolve_mesh_shape(
            mesh_shape=sharding.partitioning(mesh_shape={"data": 4, "fsdp": -1}).mesh_shape,
            num_devices=6,
        )
    with pytest.raises(UserError, match="uses 2 of 4 devices"):
        sharding.resolve_mesh_shape(mesh_shape=(("data", 2),), num_devices=4, allow_fewer=False)


def test_optimizer_state_follows_parameter_specs_without_devices():
    """Shapes only: Adam moments copy the spec, Adafactor factors keep their dim's axis."""
    params = {"wide": jax.ShapeDtypeStruct((256, 512), jnp.float32)}
    param_specs = {"wide": P("model", "fsdp")}
    for tx, expected in (
        (optax.adamw(1e-3), {(256, 512): P("model", "fsdp")}),
        (
            optax.adafactor(1e-3, min_dim_size_to_factor=128),
            {(256,): P("model"), (512,): P("fsdp"), (1,): P()},
        ),
    ):
        state = jax.eval_shape(tx.init, params)
        specs = sharding.state_partition_specs(
            abstract_state=state, abstract_params=params, param_specs=param_specs
        )
        pairs = zip(
            jax.tree.leaves(state),
            jax.tree.leaves(specs, is_leaf=lambda x: isinstance(x, P)),
            strict=True,
        )
        for leaf, spec in pairs:
            assert spec == expected.get(leaf.shape, P()), (leaf.shape, spec)


def test_per_device_bytes_of_the_micro_model_under_each_rule_set():
    config = MICRO_CONFIG.replace(vocab_size=8192)
    model = T5Transformer(config)
    shapes = {"encoder_input_tokens": (8, 32), "decoder_input_tokens": (8, 12)}
    rng = jax.random.PRNGKey(0)
    variables = jax.eval_shape(init_variables_fn(model=model, input_shapes=shapes), rng)
    init = init_state_fn(model=model, tx=optax.sgd(1.0), input_shapes=shapes)
    params = jax.eval_shape(init, rng).params
    total = sum(x.size * 4 for x in jax.tree.leaves(params))
    per_device = {}
    for rules, mesh in (
        ("data_parallel", {"data": 8, "fsdp": 1, "model": 1}),
        ("fsdp", {"data": 1, "fsdp": 8, "model": 1}),
        ("model_parallel", {"data": 4, "fsdp": 1, "model": 2}),
        ("fsdp_model_parallel", {"data": 1, "fsdp": 4, "model": 2}),
    ):
        specs = sharding.param_partition_specs(
            abstract_variables=variables["params"], mesh_sizes=mesh, rules=sharding.RULE_SETS[rules]
        )
        per_device[rules] = sharding.per_device_bytes(
            abstract_tree=params, specs=specs, mesh_sizes=mesh
        )
    assert per_device["data_parallel"] == total
    assert total / 8 <= per_device["fsdp"] < total / 6
    assert total / 2 <= per_device["model_parallel"] < total * 0.6
    assert total / 8 <= per_device["fsdp_model_parallel"] < per_device["model_parallel"] / 3


def test_host_input_layout_splits_shards_and_checks_divisibility():
    two_hosts = HostSlice(index=1, count=2, size=4, writes_position=True)
    layout = input_layout(global_batch=8, data_shards=4, host=two_hosts)
    assert (layout.shards, layout.shard_batch, layout.num_shards) == ((2, 3), 2, 4)
    assert input_layout(global_batch=8, data_shards=0, host=two_hosts).shards == (1,)
    with pytest.raises(UserError, match="must be a multiple of the 2 hosts"):
        input_layout(global_batch=8, data_shards=3, host=two_hosts)
    with pytest.raises(UserError, match="batch_size 6 is not divisible by the 4 data shards"):
        input_layout(global_batch=6, data_shards=4, host=two_hosts)


@pytest.mark.parametrize(
    "gin_file, rules, mesh",
    [
        ("dp.gin", "data_parallel", {"data": 8, "fsdp": 1, "model": 1}),
        ("fsdp.gin", "fsdp", {"data": 1, "fsdp": 8, "model": 1}),
        ("mp.gin", "model_parallel", {"data": 1, "fsdp": 1, "model": 8}),
        ("2d.gin", "model_parallel", {"data": 4, "fsdp": 1, "model": 2}),
        ("fsdp_mp.gin", "fsdp_model_parallel", {"data": 1, "fsdp": 4, "model": 2}),
    ],
)
def test_each_partitioning_gin_file_names_its_mesh_and_rules(gin_file, rules, mesh):
    try:
        gin_setup.parse_flags(
            gin_files=[str(FIXTURES / "micro.gin"), f"gin/partitioning/{gin_file}"], bindings=[]
        )
        assert gin.query_parameter("train.partitioning").selector == "partitioning"
        layout = gin_setup.call("partitioning")
    finally:
        gin.clear_config()
    assert layout.rules == sharding.RULE_SETS[rules]
    assert sharding.resolve_mesh_shape(mesh_shape=layout.mesh_shape, num_devices=8) == mesh


def test_batch_and_microbatches_must_split_over_the_data_parallel_devices():
    sharding.check_batch_split(batch_size=16, num_microbatches=2, data_parallel=8)
    with pytest.raises(UserError, match="batch_size 12 is not divisible by the data-parallel"):
        sharding.check_batch_split(batch_size=12, num_microbatches=1, data_parallel=8)
    with pytest.raises(UserError, match="microbatches of 2 examples do not split over the data-"):
        sharding.check_batch_split(batch_size=8, num_microbatches=4, data_parallel=4)
