"""Input-pipeline throughput of every objective vs the train step's appetite (measures only).

    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/objectives.py [--objectives a,b]

For each registered objective: its full seqio pipeline on the SOTU train split (default
SentencePiece vocabulary), through the trainer's own `batched_dataset` (shuffled, packed
EncDecFeatureConverter, batch 128, inputs 512, targets as the objective needs), timed over
`--batches` batches after `--warmup` batches. tokens/s counts inputs+targets positions of
the packed batches; "real" counts the non-pad ones. The targets length "needed" is the
longest targets among the first examples of an unpacked probe run (the objective's own
full-chunk length), raised to the smallest length the objective accepts if it asks more.
Next to it: the train step's consumption (tokens/s) for the tiny and T5.1.1-small configs
from benchmarks/train_step.py; an objective producing fewer real tokens/s than the small
config consumes is flagged. The data pipeline and the model share the CPU cores here, so
on a small box both numbers are pessimistic; the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
for path in (HERE.parent, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import numpy as np  # noqa: E402
import seqio  # noqa: E402
import train_step  # noqa: E402  (benchmarks/train_step.py)
from absl import logging  # noqa: E402

from t5lab.data import objectives  # noqa: E402
from t5lab.data.corpus import sotu_source  # noqa: E402
from t5lab.data.pipeline import batched_dataset  # noqa: E402
from t5lab.data.vocab import get_vocabulary  # noqa: E402
from t5lab.errors import UserError  # noqa: E402

INPUTS = 512
logging.set_verbosity(logging.ERROR)  # seqio warns that an uncached source shuffles poorly
PROBE_EXAMPLES = 64


def _register(name: str, vocabulary: seqio.Vocabulary) -> str:
    task_name = f"_bench_{name}_{uuid.uuid4().hex[:8]}"
    seqio.TaskRegistry.add(
        task_name,
        source=sotu_source(),
        preprocessors=objectives.get(name).build(),
        output_features={
            "inputs": seqio.Feature(vocabulary, add_eos=True, required=False),
            "targets": seqio.Feature(vocabulary, add_eos=True),
        },
        metric_fns=[],
    )
    return task_name


def needed_targets_length(task_name: str, *, inputs: int) -> int:
    """Longest targets in the first examples at a generous length (4x inputs)."""
    ds = seqio.TaskRegistry.get(task_name).get_dataset(
        {"inputs": inputs, "targets": 4 * inputs},
        split="train",
        shuffle=False,
        seed=0,
        use_cached=False,
    )
    lengths = [len(ex["targets"]) for ex in ds.take(PROBE_EXAMPLES).as_numpy_iterator()]
    return max(lengths)


def _smallest_accepted(make_dataset, *, low: int, high: int) -> int:
    """Smallest targets length in [low, high] the objective accepts (it raises UserError when
    its worst case does not fit, even if the probe's examples did)."""

    def accepted(length: int) -> bool:
        try:
            make_dataset(length)
            return True
        except UserError:
            return False

    if accepted(low):
        return low
    while high - low > 1:  # invariant: low rejected, high accepted
        mid = (low + high) // 2
        low, high = (low, mid) if accepted(mid) else (mid, high)
    return high


def bench_objective(*, name: str, batch: int, batches: int, warmup: int) -> dict:
    """Time the objective's trainer-shaped batches; returns rates and the lengths used."""
    vocabulary = get_vocabulary()
    task_name = _register(name, vocabulary)
    try:
        targets = needed_targets_length(task_name, inputs=INPUTS)

        def dataset(targets_length: int):
            return batched_dataset(
                mixture_or_task_name=task_name,
                task_feature_lengths={"inputs": INPUTS, "targets": targets_length},
                split="train",
                batch_size=batch,
                shuffle=True,
                seed=0,
                pack=True,
            )

        targets = _smallest_accepted(dataset, low=targets, high=4 * INPUTS)
        iterator = iter(dataset(targets))
        for _ in range(warmup):
            next(iterator)
        real = 0
        start = time.perf_counter()
        for _ in range(batches):
            b = next(iterator)
            real += int(np.count_nonzero(b["encoder_input_tokens"]))
            real += int(np.count_nonzero(b["decoder_target_tokens"]))
        elapsed = time.perf_counter() - start
    finally:
        seqio.TaskRegistry.remove(task_name)
    return {
        "name": name,
        "targets": targets,
        "examples_per_s": batches * batch / elapsed,
        "tokens_per_s": batches * batch * (INPUTS + targets) / elapsed,
        "real_tokens_per_s": real / elapsed,
        "seconds": elapsed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", default="", help="comma list (default: all registered)")
    parser.add_argument("--batches", type=int, default=30, help="timed batches")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    parser.add_argument("--batch", type=int, default=128, help="examples per batch")
    parser.add_argument("--configs", default="tiny,small", help="train-step configs ('' skips)")
    parser.add_argument("--steps", type=int, default=10, help="timed train steps per config")
    args = parser.parse_args(argv)
    known = objectives.names()
    names = [n.strip() for n in args.objectives.split(",") if n.strip()] or known
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown objective(s) {unknown}; registered: {', '.join(known)}")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if [c for c in configs if c not in train_step.CONFIGS]:
        parser.error(f"--configs: choose from {list(train_step.CONFIGS)}")
    if args.batches < 1 or args.warmup < 0 or args.batch < 1:
        parser.error("--batches and --batch must be >= 1, --warmup >= 0")

    load_before = os.getloadavg()
    rows = [
        bench_objective(name=n, batch=args.batch, batches=args.batches, warmup=args.warmup)
        for n in names
    ]
    steps = [
        train_step.bench_config(name=c, steps=args.steps, warmup=2, pack=True) for c in configs
    ]
    load_after = os.getloadavg()

    print(f"machine: {train_step.machine()}")
    print(
        f"load average 1 min: {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"pipeline: SOTU train, packed, shuffled, batch {args.batch}, inputs {INPUTS}, "
        f"{args.batches} batches after {args.warmup} warm-up"
    )
    print()
    small = next((s for s in steps if s["name"] == "small"), None)
    print("| objective | targets | examples/s | tokens/s | real tokens/s | real vs small step |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['real_tokens_per_s'] / small['tokens_per_s']:,.0f}x" if small else "-"
        flag = " **SLOWER**" if small and r["real_tokens_per_s"] < small["tokens_per_s"] else ""
        print(
            f"| {r['name']} | {r['targets']} | {r['examples_per_s']:,.0f} "
            f"| {r['tokens_per_s']:,.0f} | {r['real_tokens_per_s']:,.0f} | {ratio}{flag} |"
        )
    if steps:
        print()
        print(
            "| train step | batch × (inputs+targets) | step ms | consumes tokens/s | examples/s |"
        )
        print("|---|---|---|---|---|")
        for s in steps:
            print(
                f"| {s['name']} | {s['batch']} × ({s['inputs']}+{s['targets']}) "
                f"| {s['step_s'] * 1e3:.0f} | {s['tokens_per_s']:,.0f} "
                f"| {s['examples_per_s']:.1f} |"
            )
    slow = [r["name"] for r in rows if small and r["real_tokens_per_s"] < small["tokens_per_s"]]
    if slow:
        print(f"\nWARNING: slower than the small config consumes: {', '.join(slow)}")


if __name__ == "__main__":
    main()
