"""What a plan is made for: chips (published figures) and meshes.

Kept free of jax imports so `t5lab --help` can list the choices cheaply. The rule sets are
`t5lab.train.partitioning`'s (defined in the jax-free `t5lab.train.rule_sets`).
"""

from __future__ import annotations

import dataclasses

from t5lab.errors import UserError, did_you_mean
from t5lab.train.rule_sets import MESH_AXES


@dataclasses.dataclass(frozen=True)
class Chip:
    """Published per-chip figures (dense bf16 peak, HBM) and how slices of it are named."""

    name: str
    peak_bf16_flops: float
    hbm_bytes: float
    hbm_label: str
    chips_per_host: int
    source: str

    def slice_name(self, chips: int) -> str:
        if self.name.startswith("TPU v4") or self.name.startswith("TPU v5p"):
            return f"{self.name.split()[1]}-{2 * chips}"  # v4 / v5p types count TensorCores
        if self.name.startswith("TPU v5e"):
            return f"v5litepod-{chips}"
        if self.name.startswith("TPU v6e"):
            return f"v6e-{chips}"
        return f"{chips} x {self.name}"


CHIPS: dict[str, Chip] = {
    "v4": Chip("TPU v4", 275e12, 32 * 2**30, "32 GiB", 4, "cloud.google.com/tpu/docs/v4"),
    "v5e": Chip("TPU v5e", 197e12, 16e9, "16 GB", 8, "cloud.google.com/tpu/docs/v5e"),
    "v5p": Chip("TPU v5p", 459e12, 95e9, "95 GB", 4, "cloud.google.com/tpu/docs/v5p"),
    "v6e": Chip("TPU v6e", 918e12, 32e9, "32 GB", 8, "cloud.google.com/tpu/docs/v6e"),
    # The datasheet's 1,979 TFLOP/s bf16 is with 2:4 sparsity; dense is half.
    "h100": Chip("H100 SXM", 989e12, 80e9, "80 GB", 8, "NVIDIA H100 datasheet (SXM5)"),
}


def parse_mesh(text: str) -> dict[str, int]:
    """'fsdp:4,model:2' -> {'fsdp': 4, 'model': 2}."""
    mesh: dict[str, int] = {}
    for part in text.split(","):
        name, sep, size = part.strip().partition(":")
        if not sep or not size.strip().isdigit() or int(size) < 1:
            raise UserError(f"--mesh {text!r}: write AXIS:SIZE pairs, e.g. fsdp:4,model:2")
        if name not in MESH_AXES:
            raise UserError(f"--mesh axis {name!r} is unknown{did_you_mean(name, MESH_AXES)}")
        if name in mesh:
            raise UserError(f"--mesh names {name!r} twice")
        mesh[name] = int(size)
    return mesh


def get_chip(name: str) -> Chip:
    if name not in CHIPS:
        raise UserError(f"unknown --chip {name!r}; choose one of {', '.join(CHIPS)}")
    return CHIPS[name]
