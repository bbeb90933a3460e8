"""Gin at the entry point only: register the library's functions, parse t5x-style flags.

Library functions know nothing of gin; here they become configurables under short names
(`train`, `T5Config`, `adafactor`, ...), and gin's errors become one-line `UserError`s that
name the closest valid spelling.
"""

import importlib.util  # noqa: F401  (gin's `include` of a missing file needs it imported)
import inspect
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import gin

from t5lab.errors import UserError, did_you_mean

REPO_GIN_DIR = Path(__file__).resolve().parent.parent / "gin"

_CONFIGURABLES: dict[str, Callable] = {}


class _HideSearchMisses(logging.Filter):
    """Gin logs every search path it tries for an include at ERROR level: noise, not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Path not found")


logging.getLogger().addFilter(_HideSearchMisses())


def _tolerant(exists: Callable[[str], bool]) -> Callable[[str], bool]:
    def check(path: str) -> bool:
        try:
            return exists(path)
        except TypeError:  # a namespace package (a plain folder on sys.path) has no origin
            return False

    return check


# gin resolves `include 'runs/x.gin'` also as a resource of a Python package named `runs`;
# a folder of that name on sys.path makes its check crash instead of saying "not here".
gin.config._FILE_READERS[:] = [
    (reader, _tolerant(exists)) for reader, exists in gin.config._FILE_READERS
]


def register(fn: Callable, name: str) -> Callable:
    """Register `fn` with gin once under `name`; returns the gin-wrapped callable."""
    if name not in _CONFIGURABLES:
        _CONFIGURABLES[name] = gin.external_configurable(fn, name=name)
    return _CONFIGURABLES[name]


def configurable(name: str) -> Callable:
    return _CONFIGURABLES[name]


def register_all() -> None:
    """Everything a gin file may name. Imports lazily: `t5lab --help` stays fast."""
    from t5lab.convert import native
    from t5lab.data import mixing, objectives, vocab
    from t5lab.eval import evaluator, runner
    from t5lab.experiments import lab, sweep
    from t5lab.models import T5Config
    from t5lab.models.electra import ElectraConfig
    from t5lab.train import optimizers, partitioning, trainer
    from tasks import downstream, pretraining, text_to_text  # `import tasks` registers all

    register(trainer.train, "train")
    register(runner.evaluate, "evaluate")
    register(runner.infer, "infer")
    register(evaluator.evaluate_metrics, "evaluate_metrics")
    register(evaluator.select_best_checkpoint, "select_best_checkpoint")
    register(native.export_run_to_hf, "export_hf")
    register(T5Config, "T5Config")
    register(ElectraConfig, "ElectraConfig")
    register(optimizers.adafactor, "adafactor")
    register(optimizers.adamw, "adamw")
    register(optimizers.rsqrt_schedule, "rsqrt_schedule")
    register(partitioning.partitioning, "partitioning")
    register(optimizers.constant_schedule, "constant_schedule")
    register(vocab.get_vocabulary, "get_vocabulary")
    register(pretraining.pretraining_task, "pretraining_task")
    register(text_to_text.task_with_vocabulary, "task_with_vocabulary")
    register(downstream.register_text_task, "text_task")
    register(mixing.define_mixture, "define_mixture")
    register(lab.LabSettings, "LabSettings")
    register(sweep.sweep, "sweep")
    register(mixing.leave_one_out, "leave_one_out")
    register(mixing.ExamplesProportional, "examples_proportional")
    register(mixing.TemperatureScaled, "temperature_scaled")
    register(mixing.Equal, "equal")
    register(mixing.ExponentSmoothed, "exponent_smoothed")
    for name in objectives.names():  # `bert_mlm.corrupt_rate = 0.3` etc.
        register(objectives.get(name).build, name)


def _parameters_of(name: str) -> list[str]:
    fn = _CONFIGURABLES.get(name)
    if fn is None:
        return []
    target = getattr(fn, "__wrapped__", fn)
    return list(inspect.signature(target).parameters)


def _translate(error: Exception) -> UserError:
    """Gin's multi-line messages, reduced to one line with a suggestion."""
    text = str(error)
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    if match := re.search(r"No configurable matching (?:reference )?'@?([\w.]+)", text):
        name = match.group(1)
        return UserError(f"unknown gin configurable {name!r}{did_you_mean(name, _CONFIGURABLES)}")
    if match := re.search(r"Configurable '([\w.]+)' doesn't have a parameter named '(\w+)'", text):
        owner, param = match.groups()
        hint = did_you_mean(param, _parameters_of(owner))
        return UserError(f"{owner!r} has no parameter {param!r}{hint}")
    if "configurable 'macro'" in text and (match := re.search(r"in scope '(\w+)'", text)):
        return UserError(
            f"gin macro {match.group(1)} has no value: bind it in a gin file or pass "
            f"--gin.{match.group(1)}=..."
        )
    if match := re.search(
        r"No values supplied by Gin or caller for arguments: \[([^\]]*)\][\s\S]*"
        r"In call to configurable '([\w.]+)'",
        text,
    ):
        missing = ", ".join(
            f"{match.group(2)}.{a.strip(chr(39))}" for a in match.group(1).split(", ")
        )
        return UserError(f"no value for {missing}: bind it in a gin file or with --gin.")
    if match := re.search(r"Unable to open file: ([^\s.]+\.gin)", text):
        return UserError(f"gin file not found: {match.group(1)}{_nearby_gin_files(match.group(1))}")
    return UserError(f"gin: {first}")


def _nearby_gin_files(missing: str) -> str:
    if not REPO_GIN_DIR.is_dir():
        return ""
    known = [str(p.relative_to(REPO_GIN_DIR)) for p in REPO_GIN_DIR.rglob("*.gin")]
    relative = missing.split("gin/", 1)[-1]
    return did_you_mean(relative, known)


def _quote_if_bare(value: str) -> str:
    """Let `--gin.MODEL_DIR=runs/x` work as well as t5x's `--gin.MODEL_DIR='"runs/x"'`."""
    try:
        gin.config.parse_value(value)
        return value
    except Exception:
        return repr(value)


def parse_flags(
    *,
    gin_files: Sequence[str],
    bindings: Sequence[str],
    search_paths: Sequence[str] = (),
) -> None:
    """Apply gin files in order, then bindings (`NAME=VALUE` or full gin statements)."""
    register_all()
    gin.clear_config()
    for path in [*search_paths, os.getcwd(), str(REPO_GIN_DIR)]:
        if path:
            gin.add_config_file_search_path(path)
    statements = []
    for binding in bindings:
        name, sep, value = binding.partition("=")
        statements.append(f"{name.strip()} = {_quote_if_bare(value.strip())}" if sep else binding)
    try:
        resolved = [_resolve_gin_file(gin_file, search_paths) for gin_file in gin_files]
        gin.parse_config_files_and_bindings(resolved, statements, finalize_config=False)
    except UserError:
        raise
    except Exception as error:  # gin raises ValueError, IOError, SyntaxError, ...
        raise _translate(error) from None


def _resolve_gin_file(gin_file: str, search_paths: Sequence[str]) -> str:
    """An absolute path: gin would read a relative `gin/...` as a resource of its own package."""
    roots = [*search_paths, os.getcwd(), str(REPO_GIN_DIR), str(REPO_GIN_DIR.parent)]
    candidates = [gin_file] + [os.path.join(root, gin_file) for root in roots]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    raise UserError(f"gin file not found: {gin_file}{_nearby_gin_files(gin_file)}")


def call(name: str, **overrides):
    """Call a registered configurable with gin's bindings, translating gin's call errors."""
    fn = configurable(name)
    try:
        return fn(**overrides)
    except TypeError as error:
        if "No values supplied by Gin" in str(error):
            raise _translate(error) from None
        raise
