"""Run a list of training runs in one process, resumably, with progress across the whole job.

Each run is `t5lab train` with its own gin files and bindings and MODEL_DIR
`<exp_dir>/runs/<name>`; a run may start from an earlier run's final checkpoint (fine-tuning).
A finished run leaves `result.json`; running the same experiment again skips it, and an
interrupted run resumes from its own latest checkpoint, so nothing finished is redone. A result
is only reused for the same configuration (gin files and bindings) and the same vocabularies:
a retrained SentencePiece model behind an unchanged gin path must not mix into old results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence

from t5lab.errors import UserError


class ExperimentInterrupted(Exception):
    """SIGINT/SIGTERM reached a run; its checkpoint is saved and the job can be rerun."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name


@dataclasses.dataclass(frozen=True)
class RunSpec:
    name: str  # unique in the experiment; directory exp_dir/runs/<name>
    gin_files: tuple[str, ...]  # applied in order
    bindings: tuple[str, ...] = ()  # gin statements "NAME = VALUE"
    init_from: str | None = None  # an earlier run whose final checkpoint starts this one
    evaluate: bool = False  # decode + metrics on the run's own task after training
    evaluate_tasks: tuple[str, ...] = ()  # or on these tasks (a multitask run)

    def fingerprint(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


EvaluateFn = Callable[..., dict]


def run_dir(exp_dir: str, name: str) -> str:
    return os.path.join(exp_dir, "runs", name)


def _check_names(runs: Sequence[RunSpec]) -> None:
    seen: set[str] = set()
    for spec in runs:
        if spec.name in seen:
            raise UserError(f"two runs are named {spec.name!r}")
        if spec.init_from is not None and spec.init_from not in seen:
            raise UserError(f"run {spec.name!r} starts from {spec.init_from!r}, not an earlier run")
        if not spec.name or "/" in spec.name or spec.name.startswith("."):
            raise UserError(f"bad run name {spec.name!r}: use letters, digits, - and _")
        seen.add(spec.name)


_REDO = "use another experiment directory, or delete that run to redo it"


def _read_result(path: str, spec: RunSpec, vocabularies: dict[str, str]) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        result = json.load(handle)
    if result.get("fingerprint") != spec.fingerprint():
        raise UserError(f"{path} was written by a different run configuration: {_REDO}")
    # Results written before vocabularies were recorded carry none and are taken as they are.
    recorded = result.get("vocabularies", vocabularies)
    changed = sorted(
        k for k in set(recorded) | set(vocabularies) if recorded.get(k) != vocabularies.get(k)
    )
    if changed:
        raise UserError(f"{path} was trained with another vocabulary for {changed[0]}: {_REDO}")
    return result


def _vocabulary_digest(vocabulary) -> str:
    """The SentencePiece model's bytes (other vocabularies: their kind and size), with extra ids."""
    model = getattr(vocabulary, "sp_model", None)
    if not isinstance(model, bytes):
        model = repr((type(vocabulary).__name__, vocabulary.vocab_size)).encode()
    extra = getattr(vocabulary, "extra_ids", 0)
    return hashlib.sha256(model + f"|extra_ids={extra}".encode()).hexdigest()[:16]


def _parse(spec: RunSpec, directory: str, init_dir: str | None) -> dict[str, str]:
    """Apply the run's gin; return {"task/feature": vocabulary digest} of the task it trains."""
    import seqio

    from t5lab import gin_setup

    bindings = [*spec.bindings, f"MODEL_DIR = {json.dumps(directory)}"]
    if init_dir is not None:
        bindings.append(f"train.initial_checkpoint = {json.dumps(init_dir)}")
    gin_setup.parse_flags(gin_files=list(spec.gin_files), bindings=bindings, search_paths=[])
    task = _task_name()
    if task is None:
        return {}
    features = seqio.get_mixture_or_task(task).output_features
    return {
        f"{task}/{key}": _vocabulary_digest(f.vocabulary) for key, f in sorted(features.items())
    }


def _task_name() -> str | None:
    import gin

    try:
        task = gin.query_parameter("%MIXTURE_OR_TASK_NAME")
    except ValueError:
        return None
    # `@pretraining_task()` and `@define_mixture()` name their task when called
    return task if isinstance(task, str) else task.scoped_configurable_fn()


def _write_json(path: str, payload: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _train() -> dict:
    """Train the run whose gin `_parse` applied."""
    import gin

    from t5lab import gin_setup

    summary = gin_setup.call("train", config_text=gin.config_str(), show_progress=False)
    if summary.stopped_by:
        raise ExperimentInterrupted(summary.stopped_by)
    return {
        "final_step": summary.final_step,
        "train_loss": summary.train_loss,
        "last_validation": summary.last_validation,
        "seconds": summary.seconds,
        "tokens_per_second": summary.tokens_per_second,
        "num_params": summary.num_params,
    }


ATTEMPTS_FILE = "attempts.json"


def _last_write(directory: str, *, besides: str) -> float:
    times = [
        os.path.getmtime(os.path.join(root, name))
        for root, _, names in os.walk(directory)
        for name in names
        if os.path.join(root, name) != besides
    ]
    return max(times, default=0.0)


def start_attempt(directory: str) -> tuple[float, int]:
    """(seconds spent by earlier attempts of this run, this attempt's number); records its start.

    An attempt that was killed outright (SIGKILL, a session's end) leaves no end time: it is
    taken as its last write into the run directory. Work after that write is redone by the next
    attempt and so counted once, in the attempt that keeps it.
    """
    path = os.path.join(directory, ATTEMPTS_FILE)
    earlier, attempts = 0.0, 0
    if os.path.exists(path):
        with open(path) as handle:
            record = json.load(handle)
        earlier, attempts = record["earlier_seconds"], record["attempts"]
        earlier += max(0.0, _last_write(directory, besides=path) - record["started"])
    os.makedirs(directory, exist_ok=True)
    _write_json(
        path, {"started": time.time(), "earlier_seconds": earlier, "attempts": attempts + 1}
    )
    return earlier, attempts + 1


def run_steps(spec: RunSpec) -> int | None:
    """The run's TRAIN_STEPS binding, if the spec sets one (lab runs always do)."""
    for statement in spec.bindings:
        name, _, value = statement.partition("=")
        if name.strip() == "TRAIN_STEPS" and value.strip().isdigit():
            return int(value)
    return None


def run_status(exp_dir: str, spec: RunSpec) -> tuple[str, int]:
    """("done" | "started" | "to run", steps checkpointed): what a rerun would do; "started" is
    an interrupted run (or one training now)."""
    directory = run_dir(exp_dir, spec.name)
    if os.path.exists(os.path.join(directory, "result.json")):
        return "done", run_steps(spec) or 0
    checkpoints = os.path.join(directory, "checkpoints")
    steps = (
        [int(n) for n in os.listdir(checkpoints) if n.isdigit()]
        if os.path.isdir(checkpoints)
        else []
    )
    return ("started", max(steps)) if steps else ("to run", 0)


def describe_runs(*, exp_dir: str, runs: Sequence[RunSpec]) -> str:
    """A dry run: every run in order with its steps and status, and the steps still to train."""
    _check_names(runs)
    lines, counts, total, left = [], {}, 0, 0
    for index, spec in enumerate(runs, start=1):
        status, trained = run_status(exp_dir, spec)
        steps = run_steps(spec) or 0
        counts[status] = counts.get(status, 0) + 1
        total, left = total + steps, left + max(steps - trained, 0)
        if status == "started":
            status = f"started, step {trained:,} checkpointed"
        start = f", from {spec.init_from}" if spec.init_from else ""
        lines.append(f"[{index}/{len(runs)}] {spec.name}: {steps:,} steps{start}; {status}")
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    lines.append(f"{len(runs)} runs in {exp_dir} ({summary}); {left:,} of {total:,} steps to train")
    return "\n".join(lines)


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class JobProgress:
    """One line per run: position in the job, elapsed time, and an ETA from finished runs."""

    def __init__(self, *, total: int, enabled: bool, stream=None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.durations: list[float] = []

    def line(self, *, index: int, name: str, status: str) -> None:
        if not self.enabled:
            return
        remaining = self.total - index
        eta = ""
        if self.durations and remaining:
            mean = sum(self.durations) / len(self.durations)
            eta = f", ETA {_format_seconds(mean * remaining)}"
        elapsed = _format_seconds(time.perf_counter() - self.started)
        print(
            f"[{index}/{self.total}] {name}: {status} (elapsed {elapsed}{eta})",
            file=self.stream,
            flush=True,
        )


def run_experiment(
    *,
    exp_dir: str,
    runs: Sequence[RunSpec],
    show_progress: bool = True,
    evaluate_fn: EvaluateFn | None = None,
) -> dict[str, dict]:
    """Run every spec in order (skipping finished ones); {name: {"train": ..., "metrics": ...}}.

    `evaluate_fn(model_dir=..., task=...)` scores a finished run on a task (decode + metrics);
    runs with `evaluate` or `evaluate_tasks` need it.
    """
    _check_names(runs)
    os.makedirs(os.path.join(exp_dir, "runs"), exist_ok=True)
    _write_json(
        os.path.join(exp_dir, "experiment.json"),
        {"runs": [dataclasses.asdict(spec) for spec in runs]},
    )
    progress = JobProgress(total=len(runs), enabled=show_progress)
    results: dict[str, dict] = {}
    for index, spec in enumerate(runs, start=1):
        directory = run_dir(exp_dir, spec.name)
        result_path = os.path.join(directory, "result.json")
        init_dir = run_dir(exp_dir, spec.init_from) if spec.init_from else None
        vocabularies = _parse(spec, directory, init_dir)
        done = _read_result(result_path, spec, vocabularies)
        if done is not None:
            results[spec.name] = done
            progress.line(index=index, name=spec.name, status="done earlier")
            continue
        progress.line(index=index - 1, name=spec.name, status="running")
        earlier, attempt = start_attempt(directory)
        started = time.perf_counter()
        train_result = _train()
        metrics = _evaluate(spec, directory, evaluate_fn)
        seconds = time.perf_counter() - started
        result = {
            "fingerprint": spec.fingerprint(),
            "vocabularies": vocabularies,
            "train": train_result,
            "metrics": metrics,
            "wall_seconds": earlier + seconds,  # training + scoring, over every attempt
            "attempts": attempt,
        }
        _write_json(result_path, result)
        results[spec.name] = result
        progress.durations.append(earlier + seconds)
        progress.line(index=index, name=spec.name, status="finished")
    return results


def _evaluate(spec: RunSpec, directory: str, evaluate_fn: EvaluateFn | None) -> dict:
    tasks = list(spec.evaluate_tasks)
    if spec.evaluate and not tasks:
        tasks = [_task_name()]
    if not tasks:
        return {}
    if evaluate_fn is None:
        raise UserError(f"run {spec.name!r} asks for evaluation but no evaluator was given")
    return {task: evaluate_fn(model_dir=directory, task=task) for task in tasks}
