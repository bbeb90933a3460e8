"""`t5lab` command line: train / eval / infer / vocab train, with t5x-style gin flags.

    t5lab train --gin_file=gin/quickstart.gin --gin.TRAIN_STEPS=1000 --gin.MODEL_DIR=runs/a

Every user mistake ends as one `t5lab: error: ...` line on stderr and exit status 2.
An interrupted training run exits with 128 + the signal number after saving a checkpoint.
"""

import argparse
import ast
import json
import os
import signal
import sys
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from t5lab.errors import UserError  # noqa: E402

EXIT_USER_ERROR = 2


def _split_gin_shorthand(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Pull t5x's `--gin.NAME=VALUE` flags out of argv (argparse cannot declare them)."""
    rest, bindings = [], []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg.startswith("--gin."):
            body = arg[len("--gin.") :]
            if "=" not in body:
                if not args:
                    raise UserError(f"{arg} needs a value: --gin.NAME=VALUE")
                body = f"{body}={args.pop(0)}"
            bindings.append(body)
        else:
            rest.append(arg)
    return rest, bindings


def _add_gin_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gin_file", action="append", default=[], help="gin file (repeatable)")
    parser.add_argument(
        "--gin_bindings", action="append", default=[], help="a gin statement (repeatable)"
    )
    parser.add_argument(
        "--gin_search_paths", default="", help="comma-separated directories for gin files"
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t5lab",
        description="JAX/Flax text-to-text pretraining lab. Gin flags: --gin_file=FILE "
        "(repeatable), --gin.NAME=VALUE, --gin_bindings='NAME = VALUE', --gin_search_paths=DIRS.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="pretrain or fine-tune (resumes automatically)")
    _add_gin_flags(train)
    train.add_argument("--quiet", action="store_true", help="no progress display")
    evaluate = commands.add_parser(
        "eval", help="loss and token accuracy of a checkpoint; --metrics: the tasks' metrics"
    )
    _add_gin_flags(evaluate)
    evaluate.add_argument("--split", default=None)
    evaluate.add_argument("--checkpoint_step", type=int, default=None)
    evaluate.add_argument(
        "--metrics", action="store_true", help="decode and score with each task's metric_fns"
    )
    evaluate.add_argument("--decode", choices=["greedy", "beam", "sample"], default=None)
    evaluate.add_argument("--beam_size", type=int, default=None)
    evaluate.add_argument("--alpha", type=float, default=None, help="beam length penalty")
    evaluate.add_argument("--temperature", type=float, default=None)
    evaluate.add_argument("--top_k", type=int, default=None, help="sampling: 0 = all tokens")
    evaluate.add_argument("--seed", type=int, default=None, help="sampling seed")
    evaluate.add_argument("--max_examples", type=int, default=None, help="per task")
    evaluate.add_argument(
        "--best_of",
        default=None,
        metavar="SPLIT",
        help="score every kept checkpoint on SPLIT, report the best on --split (default test)",
    )
    evaluate.add_argument(
        "--metric", default=None, help="TASK/METRIC, METRIC or 'average' (--best_of)"
    )
    evaluate.add_argument("--lower_is_better", action="store_true", help="for --metric")
    infer = commands.add_parser("infer", help="greedy decoding from a checkpoint")
    _add_gin_flags(infer)
    infer.add_argument("--text", action="append", default=[], help="input text (repeatable)")
    infer.add_argument("--input_file", default=None, help="one input text per line")
    infer.add_argument("--max_decode_length", type=int, default=64)
    infer.add_argument("--checkpoint_step", type=int, default=None)
    vocab = commands.add_parser("vocab", help="vocabulary tools")
    vocab_commands = vocab.add_subparsers(dest="vocab_command", required=True)
    vocab_train = vocab_commands.add_parser(
        "train", help="train a SentencePiece unigram model with T5 conventions"
    )
    vocab_train.add_argument("--input", action="append", required=True, help="glob (repeatable)")
    vocab_train.add_argument("--model_prefix", required=True, help="output path without .model")
    vocab_train.add_argument("--vocab_size", type=int, default=8000)
    vocab_train.add_argument("--text_key", default="text", help="JSONL field holding the text")
    vocab_train.add_argument(
        "--no_byte_fallback",
        dest="byte_fallback",
        action="store_false",
        help="characters without a piece become <unk> (default: spelled as 256 byte pieces)",
    )
    convert = commands.add_parser("convert", help="Hugging Face T5 checkpoints in and out")
    convert_commands = convert.add_subparsers(dest="convert_command", required=True)
    from_hf = convert_commands.add_parser(
        "from-hf", help="a HF T5 directory (config.json + safetensors) -> t5lab params"
    )
    from_hf.add_argument("source", help="directory with config.json and model.safetensors")
    from_hf.add_argument("--out", required=True, help="new directory for params/ and model.gin")
    to_hf = convert_commands.add_parser("to-hf", help="a run's checkpoint -> a HF T5 directory")
    _add_gin_flags(to_hf)
    to_hf.add_argument("--out", required=True)
    to_hf.add_argument("--checkpoint_step", type=int, default=None)
    objectives = commands.add_parser("objectives", help="pretraining objectives")
    objective_commands = objectives.add_subparsers(dest="objectives_command", required=True)
    objective_commands.add_parser("list", help="every objective with its paper and knobs")
    show = objective_commands.add_parser("show", help="what an objective does to a text")
    show.add_argument("name")
    show.add_argument("--text", required=True)
    show.add_argument("--knob", action="append", default=[], help="KNOB=VALUE (repeatable)")
    show.add_argument("--inputs_length", type=int, default=64)
    show.add_argument("--targets_length", type=int, default=None)
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--vocabulary", choices=["sentencepiece", "byte"], default="sentencepiece")
    for module in _command_modules():
        module.add_parser(commands, add_gin_flags=_add_gin_flags)
    return parser


def _command_modules() -> list:
    """Every `t5lab/commands/<name>.py`: `add_parser(commands, *, add_gin_flags)` declares the
    subcommand (with `set_defaults(handler=run)`) and `run(args, bindings) -> int` runs it."""
    import importlib
    import pkgutil

    from t5lab import commands

    return [
        importlib.import_module(f"t5lab.commands.{info.name}")
        for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name)
    ]


def _parse_knobs(pairs: Sequence[str]) -> dict[str, object]:
    knobs = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"--knob {pair!r} should look like NAME=VALUE")
        try:
            knobs[name.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            knobs[name.strip()] = value.strip()
    return knobs


def _run_objectives(args: argparse.Namespace) -> int:
    from t5lab.data.objectives import showcase
    from t5lab.data.vocab import get_vocabulary

    if args.objectives_command == "list":
        print(showcase.list_objectives())
        return 0
    print(
        showcase.show_objective(
            name=args.name,
            text=args.text,
            knobs=_parse_knobs(args.knob),
            inputs_length=args.inputs_length,
            targets_length=args.targets_length,
            seed=args.seed,
            vocabulary=get_vocabulary(kind=args.vocabulary),
        )
    )
    return 0


def _run_convert(args: argparse.Namespace, bindings: list[str]) -> int:
    from t5lab import gin_setup
    from t5lab.convert import native

    if args.convert_command == "from-hf":
        config = native.import_hf(source=args.source, out_dir=args.out)
        print(
            f"wrote {args.out}/params and {args.out}/model.gin ({config.num_encoder_layers}+"
            f"{config.num_decoder_layers} layers, d_model {config.emb_dim}, vocab "
            f"{config.vocab_size}). Fine-tune with --gin_file={args.out}/model.gin "
            f"--gin.train.initial_checkpoint={args.out}"
        )
        return 0
    parse_gin(args, bindings)
    step = gin_setup.call("export_hf", out_dir=args.out, checkpoint_step=args.checkpoint_step)
    print(f"wrote step {step} as a Hugging Face T5 checkpoint to {args.out}")
    return 0


def parse_gin(args: argparse.Namespace, bindings: list[str]) -> None:
    from t5lab import gin_setup

    if not args.gin_file:
        raise UserError("no --gin_file given (try --gin_file=gin/quickstart.gin)")
    gin_setup.parse_flags(
        gin_files=args.gin_file,
        bindings=[*args.gin_bindings, *bindings],
        search_paths=[p for p in args.gin_search_paths.split(",") if p],
    )


def _run_train(args: argparse.Namespace, bindings: list[str]) -> int:
    import gin

    from t5lab import gin_setup

    parse_gin(args, bindings)
    summary = gin_setup.call("train", config_text=gin.config_str(), show_progress=not args.quiet)
    first, last = summary.first_validation, summary.last_validation
    print(
        f"done: steps {summary.start_step} -> {summary.final_step} in {summary.seconds:.0f}s "
        f"({summary.tokens_per_second:,.0f} tokens/s)"
    )
    if last:
        start = f"{first['loss']:.4f} -> " if first else ""
        print(f"validation loss {start}{last['loss']:.4f}, token accuracy {last['accuracy']:.4f}")
    print(f"model dir: {summary.model_dir}  (tensorboard --logdir {summary.model_dir})")
    if summary.stopped_by:
        print(
            f"{summary.stopped_by}: checkpoint saved at step {summary.final_step}; "
            "run the same command again to resume"
        )
        return 128 + int(getattr(signal, summary.stopped_by))
    return 0


# `t5lab eval --metrics` flags passed on to evaluate_metrics / select_best_checkpoint.
_DECODING_FLAGS = ("decode", "beam_size", "alpha", "temperature", "top_k", "seed", "max_examples")


def _run_eval_metrics(args: argparse.Namespace) -> dict:
    from t5lab import gin_setup

    options = {
        "method" if flag == "decode" else flag: getattr(args, flag)
        for flag in _DECODING_FLAGS
        if getattr(args, flag) is not None
    }
    if not args.best_of:
        if args.metric or args.lower_is_better:
            raise UserError("--metric and --lower_is_better choose a checkpoint: add --best_of")
        if args.split:
            options["split"] = args.split
        return gin_setup.call("evaluate_metrics", checkpoint_step=args.checkpoint_step, **options)
    if args.checkpoint_step is not None:
        raise UserError("--best_of scores every kept checkpoint: drop --checkpoint_step")
    if args.metric:
        options["metric"] = args.metric
    return gin_setup.call(
        "select_best_checkpoint",
        validation_split=args.best_of,
        test_split=args.split or "test",
        higher_is_better=not args.lower_is_better,
        **options,
    )


def _run_eval(args: argparse.Namespace, bindings: list[str]) -> int:
    from t5lab import gin_setup

    given = [
        f"--{flag}"
        for flag in (*_DECODING_FLAGS, "best_of", "metric")
        if getattr(args, flag) is not None
    ]
    if not args.metrics and (given or args.lower_is_better):
        raise UserError(f"{(given or ['--lower_is_better'])[0]} needs --metrics")
    parse_gin(args, bindings)
    if args.metrics:
        print(json.dumps(_run_eval_metrics(args)))
        return 0
    overrides = {"checkpoint_step": args.checkpoint_step}
    if args.split:
        overrides["split"] = args.split
    print(json.dumps(gin_setup.call("evaluate", **overrides)))
    return 0


def _run_infer(args: argparse.Namespace, bindings: list[str]) -> int:
    from t5lab import gin_setup

    texts = list(args.text)
    if args.input_file:
        try:
            with open(args.input_file) as handle:
                texts += [line.rstrip("\n") for line in handle if line.strip()]
        except OSError as error:
            raise UserError(
                f"cannot read --input_file {args.input_file}: {error.strerror}"
            ) from None
    if not texts:
        raise UserError("nothing to decode: pass --text or --input_file")
    parse_gin(args, bindings)
    outputs = gin_setup.call(
        "infer",
        inputs=texts,
        max_decode_length=args.max_decode_length,
        checkpoint_step=args.checkpoint_step,
    )
    for text, output in zip(texts, outputs, strict=True):
        print(json.dumps({"input": text, "output": output}))
    return 0


def _run_vocab_train(args: argparse.Namespace) -> int:
    from t5lab.data.vocab import get_vocabulary, padded_vocab_size, train_sentencepiece

    path = train_sentencepiece(
        input_patterns=args.input,
        model_prefix=args.model_prefix,
        vocab_size=args.vocab_size,
        text_key=args.text_key,
        byte_fallback=args.byte_fallback,
    )
    vocabulary = get_vocabulary(spm_path=path)
    print(
        f"wrote {path}: {args.vocab_size} pieces + 100 sentinels = {vocabulary.vocab_size} ids "
        f"(model vocab_size {padded_vocab_size(vocabulary)}). Use it with "
        f"--gin.get_vocabulary.spm_path='\"{path}\"'"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        rest, bindings = _split_gin_shorthand(argv)
        args = _build_parser().parse_args(rest)
        _quiet_libraries()
        if getattr(args, "handler", None) is not None:
            return args.handler(args, bindings)
        if args.command == "vocab":
            return _run_vocab_train(args)
        if args.command == "objectives":
            return _run_objectives(args)
        runner = {
            "train": _run_train,
            "eval": _run_eval,
            "infer": _run_infer,
            "convert": _run_convert,
        }[args.command]
        return runner(args, bindings)
    except UserError as error:
        message = str(error).strip().splitlines()[0]  # gin appends "In call to ..." lines
        print(f"t5lab: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("t5lab: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


def _quiet_libraries() -> None:
    """Library INFO/WARNING chatter (seqio's cache advice, orbax's progress) is not news here."""
    from absl import logging as absl_logging

    from t5lab.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    absl_logging.set_verbosity(absl_logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
