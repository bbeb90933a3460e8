"""Orbax checkpoints of the train state, saved together with the data position.

Order matters for crash safety: the data position of step N is written first, then orbax
writes the state atomically (temporary directory, then rename). A kill between the two
leaves a data position without a state, which restore ignores and cleanup removes, so the
latest complete checkpoint always has both.

Arrays are saved sharded, each host writing its own shards; a restore lays them out on
whatever shardings the target names, so a run may resume on another mesh shape.
"""

import os
import shutil
from typing import Any, Protocol

import jax
import orbax.checkpoint as ocp

from t5lab.errors import UserError


class DataPosition(Protocol):
    """A data iterator that saves / restores its position under a directory."""

    def save(self, directory: str) -> None: ...

    def restore(self, directory: str) -> None: ...


class Checkpointer:
    """Keeps the last `keep` checkpoints of a run under `model_dir/checkpoints`."""

    def __init__(self, *, model_dir: str, keep: int = 3):
        if "://" not in model_dir:  # gs://... stays a URL; orbax needs local paths absolute
            model_dir = os.path.abspath(model_dir)
        self._dir = os.path.join(model_dir, "checkpoints")
        self._data_dir = os.path.join(model_dir, "data_position")
        self._manager = ocp.CheckpointManager(
            self._dir,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
            # a fresh manager needs the handler to read a kept step's metadata
            item_handlers=ocp.StandardCheckpointHandler(),
        )

    def _data_path(self, step: int) -> str:
        return os.path.join(self._data_dir, f"step_{step}")

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """The steps still kept (the last `keep`), oldest first."""
        return sorted(self._manager.all_steps())

    def save(self, *, step: int, state: Any, iterator: DataPosition | None) -> None:
        if step in self._manager.all_steps():
            return
        if iterator is not None:
            iterator.save(self._data_path(step))
        self._manager.save(step, args=ocp.args.StandardSave(state))
        self._manager.wait_until_finished()
        self._remove_orphan_positions()

    def restore(self, *, step: int, abstract_state: Any, iterator: DataPosition | None) -> Any:
        """The state laid out as `abstract_state` says (ShapeDtypeStructs with shardings)."""
        state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
        if iterator is not None:
            iterator.restore(self._data_path(step))
        return state

    def restore_params(self, *, step: int) -> Any:
        """Only the parameters (for eval / inference), on this host's first device whatever
        mesh wrote them: no optimizer needed to rebuild them."""
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        target = jax.tree.map(
            lambda meta: jax.ShapeDtypeStruct(meta.shape, meta.dtype, sharding=device),
            self._manager.item_metadata(step).tree,
        )
        restored = self._manager.restore(step, args=ocp.args.StandardRestore(target))
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
        if step not in checkpointer.all_steps():
            kept = ", ".join(map(str, checkpointer.all_steps()))
            raise UserError(f"no checkpoint of step {step} in {model_dir!r} (kept steps: {kept})")
        return checkpointer.restore_params(step=step), step
    finally:
        checkpointer.close()
