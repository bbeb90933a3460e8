"""Where training metrics go: a progress display, TensorBoard events and a JSONL file.

The model directory may be local or on an object store (`gs://...`): TensorBoard event files
of a URL directory are written through `tf.io.gfile`, and `metrics.jsonl` is a `fs.LineLog`
(appended locally, rewritten whole on an object store).
"""

import json
import os
import sys
import time
from collections.abc import Mapping

import tensorflow as tf
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from tensorboardX import SummaryWriter, record_writer

from t5lab.train import fs


def _format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class _GFileEventsFactory:
    """tensorboardX's writer factory protocol, on tf.io.gfile: a GFile already has the write,
    flush and close an event file needs (each flush stores the whole file so far on GCS, as
    TensorFlow's own event writers do)."""

    def open(self, path: str) -> tf.io.gfile.GFile:
        return tf.io.gfile.GFile(path, "wb")

    def directory_check(self, path: str) -> None:
        tf.io.gfile.makedirs(path)


def _events_through_gfile(model_dir: str) -> None:
    """Let tensorboardX write under a URL model dir with gfile (its own `gs://` writer needs
    google-cloud-storage, and other schemes it would treat as local paths)."""
    if fs.is_url(model_dir):
        scheme = model_dir.split("://", 1)[0]
        record_writer.register_writer_factory(scheme, _GFileEventsFactory())


class MetricsWriter:
    """TensorBoard events under `model_dir/{train,validation}` and `model_dir/metrics.jsonl`."""

    def __init__(self, *, model_dir: str, enabled: bool = True):
        self._enabled = enabled
        self._writers: dict[str, SummaryWriter] = {}
        self._model_dir = model_dir
        self._jsonl = None
        if enabled:
            _events_through_gfile(model_dir)
            self._jsonl = fs.LineLog(os.path.join(model_dir, "metrics.jsonl"))

    def write(self, *, split: str, step: int, metrics: Mapping[str, float]) -> None:
        if not self._enabled:
            return
        if split not in self._writers:
            self._writers[split] = SummaryWriter(os.path.join(self._model_dir, split))
        for name, value in metrics.items():
            self._writers[split].add_scalar(name, value, step)
        record = {"split": split, "step": step, **{k: float(v) for k, v in metrics.items()}}
        self._jsonl.append([json.dumps(record)])

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        if self._jsonl:
            self._jsonl.close()


class ProgressDisplay:
    """A rich progress bar on a terminal; plain periodic lines otherwise (logs, CI)."""

    def __init__(self, *, total_steps: int, start_step: int, enabled: bool = True):
        self._total = total_steps
        self._start_step = start_step
        self._start_time = time.perf_counter()
        self._enabled = enabled
        self._console = Console(stderr=False)
        self._bar: Progress | None = None
        if enabled and sys.stdout.isatty():
            self._bar = Progress(
                TextColumn("step {task.completed}/{task.total}"),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self._console,
            )
            self._task = self._bar.add_task(
                "train", total=total_steps, completed=start_step, status=""
            )
            self._bar.start()

    def update(self, *, step: int, loss: float, tokens_per_second: float) -> None:
        if not self._enabled:
            return
        status = f"loss {loss:.4f}  {tokens_per_second:,.0f} tok/s"
        if self._bar is not None:
            self._bar.update(self._task, completed=step, status=status)
            return
        elapsed = time.perf_counter() - self._start_time
        done = max(step - self._start_step, 1)
        eta = elapsed / done * (self._total - step)
        print(f"step {step}/{self._total}  {status}  ETA {_format_duration(eta)}", flush=True)

    def message(self, text: str) -> None:
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
