"""Train-step throughput and MFU of the real jitted train step (measures, asserts nothing).

    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/train_step.py --configs tiny,small

For each config: the median wall time of `--steps` steps after `--warmup` steps (blocking
on the metrics), tokens/s (encoder + decoder positions), examples/s, the model FLOPs per
step from `t5lab.train.flops.encoder_decoder_flops` next to XLA's `cost_analysis()` of the
same compiled step, and MFU = achieved model FLOP/s / the float32 matmul peak measured in
this process (a jitted 2048^2 @ 2048^2).

FLOP convention (both columns): a multiply-add is 2 FLOPs; train = 3x forward matmuls; the
embedding lookup is free; the logits matmul counts for the decoder; cross-attention K/V run
on input positions; attention QK^T and AV are counted in full (see t5lab/train/flops.py).
XLA also counts norms, softmax, loss and Adafactor, so XLA/model sits slightly above 1.

Batches are random tokens packed like the trainer packs them (2-4 segments a row, with
segment ids and positions); `--no-pack` drops those. Other processes on a small CPU box
skew timings: the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gin  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from t5lab import gin_setup  # noqa: E402
from t5lab.models import T5Config, T5Transformer, param_count  # noqa: E402
from t5lab.train import optimizers  # noqa: E402
from t5lab.train.flops import encoder_decoder_flops  # noqa: E402
from t5lab.train.steps import init_state_fn, make_train_step  # noqa: E402

# name -> (gin file, vocab size, batch, inputs length, targets length)
CONFIGS = {
    "tiny": ("gin/models/t5_1_1_tiny.gin", 8192, 32, 128, 32),  # the quickstart shape
    "small": ("gin/models/t5_1_1_small.gin", 32128, 16, 128, 32),
}


def load_config(*, gin_file: str, vocab_size: int) -> T5Config:
    """T5Config from the repo's model gin file (no drift), without importing the data stack.

    `gin_setup.parse_flags` would register the tasks and so import TensorFlow into the timed
    process; the model files bind only T5Config, so registering that one is enough.
    """
    t5_config = gin_setup.register(T5Config, "T5Config")
    gin.clear_config()
    gin.parse_config_files_and_bindings(
        [str(REPO / gin_file)], [f"T5Config.vocab_size = {vocab_size}"], finalize_config=False
    )
    config = t5_config()
    gin.clear_config()
    return config


def _packed_ids(*, rng: np.random.RandomState, batch: int, length: int) -> tuple:
    segments = np.zeros((batch, length), np.int32)
    positions = np.zeros((batch, length), np.int32)
    for row in range(batch):
        start, segment = 0, 1
        while start < length:
            size = min(rng.randint(length // 4, length // 2 + 1), length - start)
            segments[row, start : start + size] = segment
            positions[row, start : start + size] = np.arange(size)
            start, segment = start + size, segment + 1
    return segments, positions


def make_batch(
    *, vocab_size: int, batch: int, inputs: int, targets: int, pack: bool, seed: int = 0
) -> dict:
    """Random non-pad tokens in the feature converter's layout."""
    rng = np.random.RandomState(seed)
    tokens = lambda length: rng.randint(1, vocab_size, (batch, length)).astype(np.int32)
    out = {
        "encoder_input_tokens": tokens(inputs),
        "decoder_input_tokens": tokens(targets),
        "decoder_target_tokens": tokens(targets),
        "decoder_loss_weights": np.ones((batch, targets), np.float32),
    }
    if pack:
        enc_seg, enc_pos = _packed_ids(rng=rng, batch=batch, length=inputs)
        dec_seg, dec_pos = _packed_ids(rng=rng, batch=batch, length=targets)
        out.update(
            encoder_segment_ids=enc_seg,
            encoder_positions=enc_pos,
            decoder_segment_ids=dec_seg,
            decoder_positions=dec_pos,
        )
    return {k: jnp.asarray(v) for k, v in out.items()}


def matmul_peak_gflops(*, n: int = 2048, runs: int = 10) -> float:
    """Float32 matmul GFLOP/s in this process: the ceiling MFU is measured against."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def _flops_of(compiled) -> float:
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):  # older jax: one dict per device program
        cost = cost[0]
    return float(cost["flops"])


def bench_config(*, name: str, steps: int, warmup: int, pack: bool) -> dict:
    """Compile the real train step once, time it, and count its FLOPs two ways."""
    gin_file, vocab_size, batch, inputs, targets = CONFIGS[name]
    config = load_config(gin_file=gin_file, vocab_size=vocab_size)
    model = T5Transformer(config)
    tx = optimizers.adafactor(learning_rate=optimizers.rsqrt_schedule(warmup_steps=1000))
    shapes = {"encoder_input_tokens": (batch, inputs), "decoder_input_tokens": (batch, targets)}
    state = jax.jit(init_state_fn(model=model, tx=tx, input_shapes=shapes))(jax.random.PRNGKey(0))
    data = make_batch(vocab_size=vocab_size, batch=batch, inputs=inputs, targets=targets, pack=pack)
    rng = jax.random.PRNGKey(1)
    compiled = make_train_step(model=model).lower(state, data, rng).compile()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        state, metrics = compiled(state, data, rng)  # the state is donated
        jax.block_until_ready(metrics)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    model_flops = encoder_decoder_flops(
        config=config, batch_size=batch, inputs_length=inputs, targets_length=targets
    )
    return {
        "name": name,
        "batch": batch,
        "inputs": inputs,
        "targets": targets,
        "params": param_count(config),
        "step_s": step_s,
        "min_s": min(times),
        "tokens_per_s": batch * (inputs + targets) / step_s,
        "examples_per_s": batch / step_s,
        "model_flops": model_flops["total"],
        "attention_flops": model_flops["attention"],
        "xla_flops": _flops_of(compiled),
        "loss": float(metrics["loss"]),
    }


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{model}, {cores} cores, jax {jax.__version__} ({jax.default_backend()}), "
        f"python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,small", help=f"comma list of {list(CONFIGS)}")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (>= 10 advised)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after compiling")
    parser.add_argument("--no-pack", dest="pack", action="store_false", help="unpacked batches")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {unknown}; choose from {list(CONFIGS)}")
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")

    load_before = os.getloadavg()
    peak = matmul_peak_gflops()
    rows = [
        bench_config(name=n, steps=args.steps, warmup=args.warmup, pack=args.pack) for n in names
    ]
    peak_after = matmul_peak_gflops()
    load_after = os.getloadavg()

    print(f"machine: {machine()}")
    print(
        f"load average 1 min: {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"matmul peak (f32 2048^3, median of 10): {peak:.0f} GFLOP/s before, "
        f"{peak_after:.0f} after; {'packed' if args.pack else 'unpacked'} batches; "
        f"median of {args.steps} steps after {args.warmup} warm-up"
    )
    print()
    print(
        "| config | params | batch × (inputs+targets) | step ms | tokens/s | examples/s "
        "| model GFLOP/step | XLA GFLOP/step | XLA/model | achieved GFLOP/s "
        "| matmul peak GFLOP/s | MFU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        achieved = r["model_flops"] / r["step_s"] / 1e9
        print(
            f"| {r['name']} | {r['params'] / 1e6:.1f}M | {r['batch']} × ({r['inputs']}+"
            f"{r['targets']}) | {r['step_s'] * 1e3:.0f} | {r['tokens_per_s']:,.0f} "
            f"| {r['examples_per_s']:.1f} | {r['model_flops'] / 1e9:.2f} "
            f"| {r['xla_flops'] / 1e9:.2f} | {r['xla_flops'] / r['model_flops']:.3f} "
            f"| {achieved:.0f} | {peak:.0f} | {achieved / peak:.1%} |"
        )
    print()
    for r in rows:
        share = r["attention_flops"] / r["model_flops"]
        print(
            f"{r['name']}: fastest step {r['min_s'] * 1e3:.0f} ms; attention is {share:.0%} of "
            f"model FLOPs; loss after the timed steps {r['loss']:.3f}"
        )
    off = [r["name"] for r in rows if not 0.9 < r["xla_flops"] / r["model_flops"] < 1.1]
    if off:
        print(f"WARNING: formula and XLA differ by more than 10% for {off}")


if __name__ == "__main__":
    main()
