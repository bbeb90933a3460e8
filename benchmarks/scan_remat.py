"""Compile time and XLA's temp-memory estimate of the T5 gradient step per scan/remat setting.

    .venv/bin/python benchmarks/scan_remat.py [--model t5_1_1_base] [--batch 8] [--length 512]

Lowers and compiles `jax.value_and_grad` of the training loss from shapes only (nothing is
allocated, so base-size models are fine on a laptop) for: unrolled / scanned layers x remat
none / minimal / dots / full. Reports compile seconds (wall clock, one compile each, so noisy
on a busy machine) and `compiled.memory_analysis().temp_size_in_bytes`: the scratch XLA plans
for activations and gradients, which is what remat trades against recomputation.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from t5lab.models import T5Config, T5Transformer  # noqa: E402
from t5lab.train.losses import cross_entropy_with_z_loss  # noqa: E402

SHAPES = {  # T5.1.1 shapes (gin/models/*.gin)
    "t5_1_1_tiny": dict(emb_dim=128, num_heads=4, head_dim=32, mlp_dim=512, layers=2),
    "t5_1_1_small": dict(emb_dim=512, num_heads=6, head_dim=64, mlp_dim=1024, layers=8),
    "t5_1_1_base": dict(emb_dim=768, num_heads=12, head_dim=64, mlp_dim=2048, layers=12),
}


def compile_step(config: T5Config, batch: int, length: int) -> tuple[float, int]:
    model = T5Transformer(config)
    tokens = jax.ShapeDtypeStruct((batch, length), jnp.int32)
    init = functools.partial(model.init, enable_dropout=False)
    params = nn.unbox(jax.eval_shape(init, jax.random.PRNGKey(0), tokens, tokens)["params"])

    def loss(p, enc, dec):
        logits = model.apply({"params": p}, enc, dec, dec, enable_dropout=False)
        terms = cross_entropy_with_z_loss(logits=logits, targets=dec, weights=dec > 0)
        return terms.loss

    started = time.perf_counter()
    compiled = jax.jit(jax.value_and_grad(loss)).lower(params, tokens, tokens).compile()
    seconds = time.perf_counter() - started
    return seconds, compiled.memory_analysis().temp_size_in_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(SHAPES), default="t5_1_1_base")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=512)
    args = parser.parse_args()
    shape = dict(SHAPES[args.model])
    layers = shape.pop("layers")
    base = T5Config(vocab_size=32128, num_encoder_layers=layers, num_decoder_layers=layers, **shape)
    print(f"{args.model}, batch {args.batch} x length {args.length}, {jax.devices()[0].platform}")
    print("| layers | remat | compile s | XLA temp MiB |")
    print("| --- | --- | ---: | ---: |")
    for scan in (False, True):
        for remat in ("none", "minimal", "dots", "full"):
            seconds, temp = compile_step(
                base.replace(scan_layers=scan, remat=remat), args.batch, args.length
            )
            kind = "scanned" if scan else "unrolled"
            print(f"| {kind} | {remat} | {seconds:.1f} | {temp / 2**20:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
