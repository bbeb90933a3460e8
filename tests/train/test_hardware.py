"""Mesh flags, chip and rule names: parsed strictly, named the way Cloud TPU names slices."""

import pytest

from t5lab.errors import UserError
from t5lab.train import partitioning
from t5lab.train.hardware import RULE_SETS, get_chip, get_rules, parse_mesh


def test_parse_mesh_reads_axis_size_pairs():
    assert parse_mesh("data:4,model:2") == {"data": 4, "model": 2}
    assert parse_mesh(" fsdp:8 ") == {"fsdp": 8}


@pytest.mark.parametrize(
    "text, message",
    [
        ("data=4", "AXIS:SIZE"),
        ("data:0", "AXIS:SIZE"),
        ("data:x", "AXIS:SIZE"),
        ("data:2,data:2", "twice"),
        ("dta:2", "did you mean 'data'"),
    ],
)
def test_malformed_meshes_are_user_errors(text, message):
    with pytest.raises(UserError, match=message):
        parse_mesh(text)


def test_unknown_chip_and_rules_are_user_errors():
    with pytest.raises(UserError, match="v5e"):
        get_chip("v5")
    with pytest.raises(UserError, match="fsdp"):
        get_rules("zero3")


def test_slice_names_follow_cloud_tpu_accelerator_types():
    # v4 and v5p count TensorCores (two per chip); v5e and v6e count chips.
    assert get_chip("v4").slice_name(16) == "v4-32"
    assert get_chip("v5p").slice_name(4) == "v5p-8"
    assert get_chip("v5e").slice_name(16) == "v5litepod-16"
    assert get_chip("v6e").slice_name(8) == "v6e-8"


def test_rule_sets_are_the_trainers():
    trainer_names = {"dp": "data_parallel", "fsdp": "fsdp", "mp": "model_parallel"}
    for name, trainer_name in trainer_names.items():
        theirs = partitioning.RULE_SETS[trainer_name]
        assert RULE_SETS[name] == tuple(rule for rule in theirs if rule[1] is not None)
    assert set(RULE_SETS["2d"]) == set(RULE_SETS["fsdp"]) | set(RULE_SETS["mp"]) - {
        ("batch", "data")
    }
