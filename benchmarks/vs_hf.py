"""t5lab vs HF transformers (PyTorch) on CPU: train-step and decoding throughput.

    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/vs_hf.py --configs tiny,eff-tiny,small

Measures and prints; asserts nothing about time. For each config the same T5 shape is
trained in one process by t5lab (jitted `make_train_step`, optax AdamW) and by
`transformers.T5ForConditionalGeneration` (eager PyTorch, `torch.optim.AdamW`), steps
alternating between the two so that load drift hits both alike. Both sides: fp32, dropout
0, the same random unpacked token batch, AdamW(lr 1e-4, b 0.9/0.999, eps 1e-8, weight
decay 0.01) with global-norm clipping at 1.0; t5lab's z-loss is switched off so both
compute plain cross-entropy. Tokens/s counts encoder + decoder positions.

Denormal floats: XLA:CPU runs with them flushed to zero, torch by default computes them
(slowly, in microcode). HF's T5 initialises the untied LM head with std 1.0, so its logits
are huge and, as the loss on the repeated batch falls, its softmax and gradients fill with
denormals that slowed the torch step by a quarter to a half (and made it drift between
runs). So torch flushes them too (`torch.set_flush_denormal(True)`); --torch-denormals
keeps torch's default.

Achieved FLOP/s uses one model FLOP formula for both (`t5lab.train.flops`, see
train_step.py) and is given as a fraction of the jitted fp32 2048^3 matmul peak measured
in this process (a torch matmul peak is printed alongside for reference).

Decoding: batch 8, 64 new tokens, from the same random inputs, greedy and (with
--beam-size > 1) beam search: t5lab's jitted `greedy_decode` / `beam_search` (KV cache,
`lax.while_loop`) with an EOS id that can never occur, so every row runs 64 steps, vs
`model.generate(max_new_tokens=64, min_new_tokens=64, do_sample=False, num_beams=N)`.
The weights differ (each side's own random init); only speed is compared. Calls alternate
between the two sides like the train steps.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import train_step as ts  # noqa: E402

from t5lab.convert import config_to_hf  # noqa: E402
from t5lab.eval.decoding import beam_search  # noqa: E402
from t5lab.eval.greedy import greedy_decode  # noqa: E402
from t5lab.models import T5Config, T5Transformer, param_count  # noqa: E402
from t5lab.train import optimizers  # noqa: E402
from t5lab.train.flops import encoder_decoder_flops  # noqa: E402
from t5lab.train.steps import init_state_fn, make_train_step  # noqa: E402

LR = 1e-4
WEIGHT_DECAY = 0.01
CLIP = 1.0
DECODE_BATCH = 8
NEW_TOKENS = 64


def _eff_tiny() -> T5Config:
    """google/t5-efficient-tiny's shape (T5.1.1-style gated-GELU, untied logits)."""
    return T5Config(
        vocab_size=32128,
        emb_dim=256,
        num_heads=4,
        head_dim=64,
        mlp_dim=1024,
        num_encoder_layers=4,
        num_decoder_layers=4,
        mlp_activations=("gelu", "linear"),
        dropout_rate=0.0,
        logits_via_embedding=False,
    )


# name -> zero-argument T5Config factory
CONFIGS = {
    "tiny": lambda: ts.load_config(gin_file="gin/models/t5_1_1_tiny.gin", vocab_size=8192),
    "eff-tiny": _eff_tiny,
    "small": lambda: ts.load_config(gin_file="gin/models/t5_1_1_small.gin", vocab_size=32128),
}


def torch_matmul_peak_gflops(*, n: int = 2048, runs: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def _hf_model(config: T5Config) -> transformers.T5ForConditionalGeneration:
    hf_dict = config_to_hf(config=config)
    hf_config = transformers.T5Config(**hf_dict)
    # transformers 5's T5Config(**d) drops tie_word_embeddings=False (T5.1.1's untied
    # logits) and comes back tied; set it after construction, then share the input
    # embedding between encoder and decoder by hand, as in the T5.1.1 checkpoints.
    hf_config.tie_word_embeddings = hf_dict["tie_word_embeddings"]
    hf_config.dropout_rate = 0.0
    torch.manual_seed(0)
    model = transformers.T5ForConditionalGeneration(hf_config).float()
    model.set_input_embeddings(model.shared)
    return model


def bench_train(*, name: str, batch: int, inputs: int, targets: int, steps: int, warmup: int):
    config = CONFIGS[name]()
    data = ts.make_batch(
        vocab_size=config.vocab_size, batch=batch, inputs=inputs, targets=targets, pack=False
    )

    # t5lab
    model = T5Transformer(config)
    tx = optimizers.adamw(
        learning_rate=lambda s: LR, weight_decay=WEIGHT_DECAY, grad_clip_norm=CLIP
    )
    shapes = {"encoder_input_tokens": (batch, inputs), "decoder_input_tokens": (batch, targets)}
    state = jax.jit(init_state_fn(model=model, tx=tx, input_shapes=shapes))(jax.random.PRNGKey(0))
    rng = jax.random.PRNGKey(1)
    compiled = make_train_step(model=model, z_loss=0.0).lower(state, data, rng).compile()

    # torch (HF shifts labels right itself to make the decoder inputs; -100 would mark pads,
    # but the random batch has none)
    hf = _hf_model(config)
    hf.train()
    opt = torch.optim.AdamW(
        hf.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=WEIGHT_DECAY
    )
    input_ids = torch.tensor(np.asarray(data["encoder_input_tokens"])).long()
    attention_mask = (input_ids != 0).long()
    labels = torch.tensor(np.asarray(data["decoder_target_tokens"])).long()
    labels = labels.masked_fill(labels == 0, -100)

    def torch_step() -> float:
        loss = hf(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), CLIP)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    jax_times, torch_times = [], []
    torch_loss = float("nan")
    for i in range(warmup + steps):
        start = time.perf_counter()
        state, metrics = compiled(state, data, rng)  # the state is donated
        jax.block_until_ready(metrics)
        mid = time.perf_counter()
        torch_loss = torch_step()
        end = time.perf_counter()
        if i >= warmup:
            jax_times.append(mid - start)
            torch_times.append(end - mid)
    jax_loss = float(metrics["loss"])  # already per target token
    flops = encoder_decoder_flops(
        config=config, batch_size=batch, inputs_length=inputs, targets_length=targets
    )["total"]
    tokens = batch * (inputs + targets)
    del state, compiled
    return {
        "name": name,
        "config": config,
        "model": model,
        "hf": hf,
        "params": param_count(config),
        "hf_params": sum(p.numel() for p in hf.parameters()),
        "attn": hf.config._attn_implementation,
        "flops": flops,
        "jax_s": statistics.median(jax_times),
        "torch_s": statistics.median(torch_times),
        "jax_tps": tokens / statistics.median(jax_times),
        "torch_tps": tokens / statistics.median(torch_times),
        "jax_loss": jax_loss,
        "torch_loss": torch_loss,
    }


def bench_decode(*, row: dict, inputs: int, runs: int, warmup: int, beams: int = 1) -> dict:
    config, model, hf = row["config"], row["model"], row["hf"]
    enc = ts.make_batch(
        vocab_size=config.vocab_size,
        batch=DECODE_BATCH,
        inputs=inputs,
        targets=1,
        pack=False,
        seed=1,
    )["encoder_input_tokens"]
    params = jax.jit(model.init)(
        jax.random.PRNGKey(0), enc, jnp.zeros((DECODE_BATCH, NEW_TOKENS), jnp.int32)
    )["params"]
    # eos_id -1 never matches a token, so every row decodes all NEW_TOKENS steps.
    settings = dict(model=model, max_decode_length=NEW_TOKENS, eos_id=-1)
    if beams > 1:
        search = jax.jit(functools.partial(beam_search, beam_size=beams, alpha=0.6, **settings))

        def decode(**kwargs):
            return search(**kwargs)[0]
    else:
        decode = jax.jit(functools.partial(greedy_decode, **settings))
    hf.eval()
    input_ids = torch.tensor(np.asarray(enc)).long()
    attention_mask = torch.ones_like(input_ids)
    gen = dict(
        max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False, num_beams=beams
    )

    jax_times, torch_times = [], []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            out = decode(params=params, encoder_input_tokens=enc).block_until_ready()
            mid = time.perf_counter()
            hf_out = hf.generate(input_ids=input_ids, attention_mask=attention_mask, **gen)
            end = time.perf_counter()
            if i >= warmup:
                jax_times.append(mid - start)
                torch_times.append(end - mid)
    jax_new = int(out.shape[1])  # all rows run to the end: no EOS can stop them
    torch_new = int(hf_out.shape[1]) - 1  # generate prepends the decoder start token
    return {
        "name": row["name"],
        "method": f"beam {beams}" if beams > 1 else "greedy",
        "jax_tps": DECODE_BATCH * jax_new / statistics.median(jax_times),
        "torch_tps": DECODE_BATCH * torch_new / statistics.median(torch_times),
        "jax_new": jax_new,
        "torch_new": torch_new,
        "jax_s": statistics.median(jax_times),
        "torch_s": statistics.median(torch_times),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,eff-tiny,small", help=f"of {list(CONFIGS)}")
    parser.add_argument("--steps", type=int, default=20, help="timed train steps per side")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after compiling")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--inputs", type=int, default=128)
    parser.add_argument("--targets", type=int, default=32)
    parser.add_argument("--decode-runs", type=int, default=5, help="timed generate calls")
    parser.add_argument("--beam-size", type=int, default=4, help="also beam search; 1 = skip")
    parser.add_argument("--no-decode", dest="decode", action="store_false")
    parser.add_argument(
        "--torch-denormals",
        dest="flush_denormal",
        action="store_false",
        help="keep torch's denormal floats (default: flushed to zero, as XLA:CPU does)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {unknown}; choose from {list(CONFIGS)}")
    if args.steps < 1 or args.warmup < 0 or args.decode_runs < 1 or args.beam_size < 1:
        parser.error("--steps, --decode-runs and --beam-size must be >= 1, --warmup >= 0")

    torch.set_num_threads(2)
    torch.set_flush_denormal(args.flush_denormal)
    load_before = os.getloadavg()
    peak = ts.matmul_peak_gflops()
    torch_peak = torch_matmul_peak_gflops()
    rows, decodes = [], []
    for name in names:
        row = bench_train(
            name=name,
            batch=args.batch,
            inputs=args.inputs,
            targets=args.targets,
            steps=args.steps,
            warmup=args.warmup,
        )
        if args.decode:
            for beams in sorted({1, args.beam_size}):
                decodes.append(
                    bench_decode(
                        row=row, inputs=args.inputs, runs=args.decode_runs, warmup=1, beams=beams
                    )
                )
        row.pop("model"), row.pop("hf")
        rows.append(row)
    peak_after = ts.matmul_peak_gflops()
    load_after = os.getloadavg()

    print(
        f"machine: {ts.machine()}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"transformers {transformers.__version__}"
    )
    print(
        f"load average 1 min: {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"jax matmul peak (f32 2048^3): {peak:.0f} GFLOP/s before, {peak_after:.0f} after; "
        f"torch matmul {torch_peak:.0f} GFLOP/s; torch denormals "
        f"{'flushed' if args.flush_denormal else 'kept'}; unpacked batches {args.batch} × "
        f"({args.inputs}+{args.targets}); median of {args.steps} alternating steps after "
        f"{args.warmup} warm-up; both sides fp32, dropout 0, AdamW + clip 1.0"
    )
    print()
    print(
        "| config | params (t5lab / HF) | HF attn | model GFLOP/step | t5lab ms | torch ms "
        "| t5lab tokens/s | torch tokens/s | ratio t5lab/torch | t5lab % peak | torch % peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        jax_frac = r["flops"] / r["jax_s"] / 1e9 / peak
        torch_frac = r["flops"] / r["torch_s"] / 1e9 / peak
        print(
            f"| {r['name']} | {r['params'] / 1e6:.1f}M / {r['hf_params'] / 1e6:.1f}M "
            f"| {r['attn']} | {r['flops'] / 1e9:.2f} | {r['jax_s'] * 1e3:.0f} "
            f"| {r['torch_s'] * 1e3:.0f} | {r['jax_tps']:,.0f} | {r['torch_tps']:,.0f} "
            f"| {r['jax_tps'] / r['torch_tps']:.2f} | {jax_frac:.1%} | {torch_frac:.1%} |"
        )
    if decodes:
        print()
        print(
            f"Decoding, batch {DECODE_BATCH}, {args.inputs} input tokens, {NEW_TOKENS} new "
            f"tokens per returned row, median of {args.decode_runs} calls after 1 warm-up:"
        )
        print()
        print(
            "| config | method | t5lab ms/call | torch ms/call | t5lab new tok/s "
            "| torch new tok/s | ratio t5lab/torch | new tokens (t5lab / torch) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for d in decodes:
            print(
                f"| {d['name']} | {d['method']} | {d['jax_s'] * 1e3:.0f} "
                f"| {d['torch_s'] * 1e3:.0f} "
                f"| {d['jax_tps']:,.0f} | {d['torch_tps']:,.0f} "
                f"| {d['jax_tps'] / d['torch_tps']:.2f} | {d['jax_new']} / {d['torch_new']} |"
            )
    print()
    for r in rows:
        print(
            f"{r['name']}: loss after the timed steps t5lab {r['jax_loss']:.3f} (per token), "
            f"torch {r['torch_loss']:.3f}"
        )


if __name__ == "__main__":
    main()
