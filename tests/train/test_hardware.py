"""Mesh flags and chip names: parsed strictly, named the way Cloud TPU names slices."""

import pytest

from t5lab.errors import UserError
from t5lab.train.hardware import get_chip, parse_mesh


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


def test_unknown_chips_are_user_errors():
    with pytest.raises(UserError, match="v5e"):
        get_chip("v5")


def test_slice_names_follow_cloud_tpu_accelerator_types():
    # v4 and v5p count TensorCores (two per chip); v5e and v6e count chips.
    assert get_chip("v4").slice_name(16) == "v4-32"
    assert get_chip("v5p").slice_name(4) == "v5p-8"
    assert get_chip("v5e").slice_name(16) == "v5litepod-16"
    assert get_chip("v6e").slice_name(8) == "v6e-8"
