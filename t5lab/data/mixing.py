"""Multi-task mixing: how often each task of a seqio Mixture is sampled.

A rate is a callable `rate(task) -> float` that seqio calls with each task; the batch share
of a task is its rate over the sum of the rates. The strategies are those T5 compared
(Raffel et al. 2020, section 3.5.2) plus mBERT's exponential smoothing; for a task with n
train examples the rate is:

- `ExamplesProportional(cap=K)`: min(n, K)
- `TemperatureScaled(temperature=T, cap=K)`: min(n, K) ** (1 / T)
- `Equal()`: 1
- `ExponentSmoothed(exponent=s)`: n ** s

n is seqio's count: the cached statistics of a cached task, else
`task.num_input_examples("train")` (what `seqio.mixing_rate_num_examples` reads). A task
without a count is a `UserError` naming it, never a silent zero.
"""

import dataclasses
from collections.abc import Callable, Sequence

import seqio

from t5lab.errors import UserError, did_you_mean

Rate = Callable[[seqio.Task], float]


def train_examples(task: seqio.Task) -> int:
    """The number of train examples seqio's rates use; a UserError when the task has none."""
    if task.cache_dir:
        return int(task.get_cached_stats("train")["examples"])
    count = task.num_input_examples("train")
    if count is None:
        raise UserError(
            f"task {task.name!r} declares no number of train examples, which this mixing rate "
            "needs: give its source num_input_examples, or mix with @equal()"
        )
    return int(count)


def _num_examples_rate(task: seqio.Task, **kwargs) -> float:
    train_examples(task)  # a clear error first: seqio would multiply None
    return float(seqio.mixing_rate_num_examples(task, **kwargs))


def _check_cap(cap: int) -> None:
    if cap < 1:
        raise UserError(f"mixing cap must be >= 1 (an example count), got {cap}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExamplesProportional:
    """T5's examples-proportional mixing: no task counts for more than `cap` examples."""

    cap: int

    def __post_init__(self) -> None:
        _check_cap(self.cap)

    def __call__(self, task: seqio.Task) -> float:
        return _num_examples_rate(task, maximum=self.cap)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TemperatureScaled:
    """T5's temperature-scaled mixing: capped counts to the power 1/T (T=1 is proportional)."""

    temperature: float
    cap: int = 2**21

    def __post_init__(self) -> None:
        _check_cap(self.cap)
        if self.temperature <= 0:
            raise UserError(f"mixing temperature must be > 0, got {self.temperature}")

    def __call__(self, task: seqio.Task) -> float:
        return _num_examples_rate(task, maximum=self.cap, temperature=self.temperature)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Equal:
    """Every task the same share, whatever its size (T5's 'equal mixing')."""

    def __call__(self, task: seqio.Task) -> float:
        del task
        return 1.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExponentSmoothed:
    """mBERT's exponentially smoothed weighting: rate ∝ n ** s (s = 0.7 in mBERT), no cap.

    The same as seqio's temperature T = 1 / s without a cap.
    """

    exponent: float

    def __post_init__(self) -> None:
        if not 0 < self.exponent <= 1:
            raise UserError(f"smoothing exponent must be in (0, 1], got {self.exponent}")

    def __call__(self, task: seqio.Task) -> float:
        return _num_examples_rate(task, temperature=1.0 / self.exponent)


# The settings T5 compared (table 12) and mBERT's, named as their gin/mixtures/*.gin files.
STRATEGIES: dict[str, Rate] = {
    **{f"proportional_k2_{k}": ExamplesProportional(cap=2**k) for k in range(16, 22)},
    **{f"temperature_t{t}": TemperatureScaled(temperature=float(t), cap=2**21) for t in (2, 4, 8)},
    "equal": Equal(),
    "smoothed_s07": ExponentSmoothed(exponent=0.7),
}


def _check_tasks(tasks: Sequence[str]) -> list[str]:
    if isinstance(tasks, str):
        raise UserError(f"mixture tasks must be a list of task names, got the string {tasks!r}")
    names = list(tasks)
    if not names:
        raise UserError("a mixture needs at least one task")
    known = seqio.TaskRegistry.names()
    for name in names:
        if name not in known:
            raise UserError(f"unknown task {name!r} in mixture{did_you_mean(name, known)}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UserError(f"task listed twice in mixture: {', '.join(duplicates)}")
    return names


def register_mixture(*, name: str, tasks: Sequence[str], rate: Rate | float) -> str:
    """Register (replacing any mixture of that name) without computing rates yet."""
    names = _check_tasks(tasks)
    if name in seqio.TaskRegistry.names():
        raise UserError(f"mixture name {name!r} is already a task name")
    if name in seqio.MixtureRegistry.names():
        seqio.MixtureRegistry.remove(name)
    seqio.MixtureRegistry.add(name, names, default_rate=rate)
    return name


def define_mixture(*, name: str, tasks: Sequence[str], rate: Rate) -> str:
    """Register a mixture and compute its rates now, so a bad config fails before training.

    Returns the name, so gin can write `MIXTURE_OR_TASK_NAME = @define_mixture()`.
    """
    if not callable(rate):
        raise UserError(f"mixture rate must be a rate function, got {rate!r}")
    rates = {}
    for task_name in _check_tasks(tasks):
        try:
            rates[task_name] = float(rate(seqio.TaskRegistry.get(task_name)))
        except TypeError:  # the class itself: in gin `@equal` where `@equal()` was meant
            raise UserError(
                f"mixture rate {getattr(rate, '__name__', rate)!r} is not a rate of a task; "
                "in gin, call it: define_mixture.rate = @equal() (with the parentheses)"
            ) from None
        if not rates[task_name] >= 0:
            raise UserError(
                f"mixture {name!r} gives task {task_name!r} the rate {rates[task_name]}"
            )
    if sum(rates.values()) <= 0:
        raise UserError(f"mixture {name!r} has a total rate of 0: no task would be sampled")
    return register_mixture(name=name, tasks=tasks, rate=rate)


def leave_one_out(*, tasks: Sequence[str], target: str) -> list[str]:
    """The tasks without `target`, order kept (T5's leave-one-out multi-task pre-training)."""
    names = list(tasks)
    if target not in names:
        hint = did_you_mean(target, names)
        raise UserError(f"leave-one-out target {target!r} is not among the tasks{hint}")
    return [name for name in names if name != target]


@dataclasses.dataclass(frozen=True)
class TaskShare:
    """One task's part of a mixture over a training run (examples unpacked)."""

    task: str
    train_examples: int | None
    rate: float
    share: float
    examples_seen: float
    epochs: float | None


def task_shares(*, mixture_name: str, train_steps: int, batch_size: int) -> list[TaskShare]:
    """Per task of a registered mixture (or a lone task): rate, batch share, epochs over a run.

    Examples seen = share x steps x batch size, i.e. unpacked examples: with packing a row
    holds several examples, so a packed run sees more of each task than this.
    """
    if train_steps < 0 or batch_size < 1:
        raise UserError(
            f"need train_steps >= 0 and batch_size >= 1, got {train_steps} and {batch_size}"
        )
    if mixture_name in seqio.MixtureRegistry.names():
        mixture = seqio.MixtureRegistry.get(mixture_name)
    elif mixture_name in seqio.TaskRegistry.names():  # a task alone: all of every batch
        mixture = seqio.Mixture(mixture_name, [mixture_name], default_rate=1.0)
    else:
        known = [*seqio.MixtureRegistry.names(), *seqio.TaskRegistry.names()]
        raise UserError(f"unknown mixture {mixture_name!r}{did_you_mean(mixture_name, known)}")
    total = mixture.total_rate
    if total <= 0:
        raise UserError(f"mixture {mixture_name!r} has a total rate of 0")
    shares = []
    for task in mixture.tasks:
        rate = mixture.get_rate(task)
        try:
            count = train_examples(task)
        except UserError:
            count = None
        share = rate / total
        seen = share * train_steps * batch_size
        shares.append(
            TaskShare(
                task=task.name,
                train_examples=count,
                rate=rate,
                share=share,
                examples_seen=seen,
                epochs=seen / count if count else None,
            )
        )
    return shares
