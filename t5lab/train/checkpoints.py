"""Orbax checkpoints of the train state, saved together with the data position.

Order matters for crash safety: the data position of step N is written first, then orbax
writes the state atomically (temporary directory, then rename). A kill between the two
leaves a data position without a state, which restore ignores and cleanup removes, so the
latest complete checkpoint always has both.
"""

import os
import shutil
from typing import Any

import jax
import orbax.checkpoint as ocp

from t5lab.data.pipeline import CheckpointableIterator
from t5lab.errors import UserError


class Checkpointer:
    """Keeps the last `keep` checkpoints of a run under `model_dir/checkpoints`."""

    def __init__(self, *, model_dir: str, keep: int = 3):
        self._dir = os.path.abspath(os.path.join(model_dir, "checkpoints"))
        self._data_dir = os.path.abspath(os.path.join(model_dir, "data_position"))
        self._manager = ocp.CheckpointManager(
            self._dir,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        )

    def _data_path(self, step: int) -> str:
        return os.path.join(self._data_dir, f"step_{step}", f"process_{jax.process_index()}")

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, *, step: int, state: Any, iterator: CheckpointableIterator | None) -> None:
        if step in self._manager.all_steps():
            return
        if iterator is not None:
            iterator.save(self._data_path(step))
        self._manager.save(step, args=ocp.args.StandardSave(state))
        self._manager.wait_until_finished()
        self._remove_orphan_positions()

    def restore(
        self, *, step: int, abstract_state: Any, iterator: CheckpointableIterator | None
    ) -> Any:
        state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
        if iterator is not None:
            iterator.restore(self._data_path(step))
        return state

    def restore_params(self, *, step: int) -> Any:
        """Only the parameters (for eval / inference): no optimizer needed to rebuild them."""
        restored = self._manager.restore(step, args=ocp.args.StandardRestore())
        return restored["params"]

    def _remove_orphan_positions(self) -> None:
        if not os.path.isdir(self._data_dir) or jax.process_index() != 0:
            return
        kept = {f"step_{s}" for s in self._manager.all_steps()}
        for name in os.listdir(self._data_dir):
            if name not in kept:
                shutil.rmtree(os.path.join(self._data_dir, name), ignore_errors=True)

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def restore_run_params(*, model_dir: str, step: int | None = None) -> tuple[Any, int]:
    """Parameters of a run's checkpoint (the latest when `step` is None), and its step."""
    checkpointer = Checkpointer(model_dir=model_dir, keep=1_000_000)
    try:
        step = checkpointer.latest_step() if step is None else step
        if step is None:
            raise UserError(f"no checkpoint in {model_dir!r}: train first (t5lab train ...)")
        return checkpointer.restore_params(step=step), step
    finally:
        checkpointer.close()
