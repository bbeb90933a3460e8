"""Joining the processes of a multi-host run with `jax.distributed` (before any JAX work).

Three ways in: an explicit coordinator (GPU or CPU clusters: every process gets the same
`coordinator_address` and `num_processes` and its own `process_id`); on a Cloud TPU VM,
JAX's own detection of the pod's hosts (no flags); anything else is a plain single-process
run. CPU processes exchange collectives through gloo.
"""

import jax

from t5lab.errors import UserError

_joined: tuple[str, int, int] | None = None


def initialize(
    *, coordinator_address: str = "", num_processes: int = 0, process_id: int = -1
) -> None:
    """Join the run once per process; later calls with the same settings do nothing."""
    global _joined
    explicit = (coordinator_address, num_processes, process_id)
    if _joined is not None:
        if coordinator_address and explicit != _joined:
            raise UserError(
                f"this process already joined {_joined[0]} as process {_joined[2]} of "
                f"{_joined[1]}: one distributed setting per process"
            )
        return
    if not coordinator_address:
        if num_processes > 1 or process_id >= 0:
            raise UserError(
                "num_processes / process_id need train.coordinator_address (host:port of "
                "process 0) as well"
            )
        _join_detected_cluster()
        return
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise UserError(
            f"with coordinator_address, set num_processes >= 1 and 0 <= process_id < "
            f"num_processes (got num_processes={num_processes}, process_id={process_id})"
        )
    if ":" not in coordinator_address:
        raise UserError(f"coordinator_address must be host:port, got {coordinator_address!r}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
        )
    except RuntimeError as error:
        raise UserError(f"could not join {coordinator_address}: {error}") from None
    _joined = explicit


def _on_cloud_tpu_vm() -> bool:
    try:  # JAX sets this when it finds libtpu on a Cloud TPU VM; there is no public probe
        from jax._src.cloud_tpu_init import running_in_cloud_tpu_vm
    except ImportError:
        return False
    return bool(running_in_cloud_tpu_vm)


def _join_detected_cluster() -> None:
    """On a Cloud TPU VM JAX finds the pod's hosts itself; elsewhere: one process."""
    global _joined
    if not jax.distributed.is_initialized():
        if not _on_cloud_tpu_vm():
            return
        try:
            jax.distributed.initialize()
        except RuntimeError as error:  # JAX already ran computations in this process
            raise UserError(f"could not join the TPU pod: {error}") from None
    _joined = ("", jax.process_count(), jax.process_index())
