"""Orbax checkpoints of the train state, saved together with the data position.

Order matters for crash safety: the data position of step N is written first, then orbax
writes the state atomically (temporary directory, then rename). A kill between the two
leaves a data position without a state, which restore ignores and cleanup removes, so the
latest complete checkpoint always has both.

`model_dir` may be local or a URL (`gs://...`): orbax handles both, the data positions go
through `t5lab.train.fs`.

Arrays are saved sharded, each host writing its own shards; a restore lays them out on
whatever shardings the target names, so a run may resume on another mesh shape.
"""

import os
from typing import Any, Protocol

import jax
import orbax.checkpoint as ocp
import tensorflow as tf

from t5lab.errors import UserError
from t5lab.train import fs


class DataPosition(Protocol):
    """A data iterator that saves / restores its position under a directory."""

    def save(self, directory: str) -> None: ...

    def restore(self, directory: str) -> None: ...


class DataPositions:
    """The data position of each checkpointed step, under `model_dir/data_position/step_N`."""

    def __init__(self, *, model_dir: str):
        self.directory = os.path.join(model_dir, "data_position")

    def path(self, step: int) -> str:
        return os.path.join(self.directory, f"step_{step}")

    def save(self, *, step: int, iterator: DataPosition) -> None:
        iterator.save(self.path(step))

    def restore(self, *, step: int, iterator: DataPosition) -> None:
        iterator.restore(self.path(step))

    def keep_only(self, steps: list[int]) -> None:
        """Delete the positions of every other step (orphans of a kill, dropped checkpoints)."""
        if not tf.io.gfile.isdir(self.directory):
            return
        kept = {f"step_{step}" for step in steps}
        for name in fs.list_dir(self.directory):
            if name not in kept:
                try:
                    fs.remove_tree(os.path.join(self.directory, name))
                except fs.FILE_ERRORS:  # cleanup only: the next save tries again
                    pass


class Checkpointer:
    """Keeps the last `keep` checkpoints of a run under `model_dir/checkpoints`."""

    def __init__(self, *, model_dir: str, keep: int = 3):
        model_dir = fs.absolute(model_dir)  # orbax needs local paths absolute
        self._dir = os.path.join(model_dir, "checkpoints")
        self._positions = DataPositions(model_dir=model_dir)
        self._manager = ocp.CheckpointManager(
            self._dir,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
            # a fresh manager needs the handler to read a kept step's metadata
            item_handlers=ocp.StandardCheckpointHandler(),
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """The steps still kept (the last `keep`), oldest first."""
        return sorted(self._manager.all_steps())

    def save(self, *, step: int, state: Any, iterator: DataPosition | None) -> None:
        if step in self._manager.all_steps():
            return
        if iterator is not None:
            self._positions.save(step=step, iterator=iterator)
        self._manager.save(step, args=ocp.args.StandardSave(state))
        self._manager.wait_until_finished()
        if jax.process_index() == 0:
            self._positions.keep_only(self.all_steps())

    def restore(self, *, step: int, abstract_state: Any, iterator: DataPosition | None) -> Any:
        """The state laid out as `abstract_state` says (ShapeDtypeStructs with shardings)."""
        state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
        if iterator is not None:
            self._positions.restore(step=step, iterator=iterator)
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
