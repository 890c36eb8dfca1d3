"""Multi-process launch: read the rank from torchrun / accelerate, run this rank's shard, wait for all
ranks, merge on rank 0, clean up (:func:`run_distributed`).

Each rank evaluates its own shard into ``OUT/shard-<rank>-of-<world>/``; after a barrier rank 0
merges the shards into ``OUT`` and scores. The barrier uses ``torch.distributed`` (gloo, with a
long timeout: shards finish at different times) when torch is importable, and otherwise a
file-based wait on every shard's ``run.json`` saying ``complete``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonseg_x.errors import ReasonSegXError
from reasonseg_x.runner.record import is_run_folder, run_status

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.runner.evaluate import EvalConfig, EvalOutcome
    from reasonseg_x.runner.merge import MergeOutcome

__all__ = ["DistEnv", "detect", "setup", "barrier", "teardown", "wait_for_shards", "require_visible",
           "run_distributed"]

#: seconds a rank may wait for the others at the barrier (a shard can take hours)
DEFAULT_TIMEOUT_S = float(os.environ.get("REASONSEG_X_BARRIER_TIMEOUT", 48 * 3600))


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    launcher: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def detect(environ: Mapping[str, str] | None = None) -> DistEnv | None:
    """The launcher's rank and world size from ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (torchrun, accelerate).

    Returns None for a single process. Slurm variables are deliberately not read: a batch script
    sees ``SLURM_NTASKS`` too, and would wait for shards nobody runs; pass ``--num-shards
    $SLURM_NTASKS --shard-id $SLURM_PROCID`` (or an array index) explicitly instead.
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return None
    try:
        world = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ReasonSegXError(f"cannot read RANK/WORLD_SIZE/LOCAL_RANK from the environment: {exc}") from None
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise ReasonSegXError(f"RANK={rank} is outside WORLD_SIZE={world}")
    if any(k.startswith("ACCELERATE_") for k in env):
        launcher = "accelerate"
    elif "TORCHELASTIC_RUN_ID" in env or "TORCHELASTIC_RESTART_COUNT" in env:
        launcher = "torchrun"
    else:
        launcher = "env"
    return DistEnv(rank, world, local, launcher)


def _dist():
    try:
        import torch.distributed as dist
    except ImportError:
        return None
    return dist if dist.is_available() else None


def setup(env: DistEnv) -> bool:
    """Join the process group (gloo) unless one exists; pin this rank's GPU. True if torch is used."""
    dist = _dist()
    if dist is None:
        return False
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > env.local_rank:
        torch.cuda.set_device(env.local_rank)
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
            return False
        dist.init_process_group(backend="gloo", init_method="env://", rank=env.rank, world_size=env.world_size,
                                timeout=timedelta(seconds=DEFAULT_TIMEOUT_S))
    return True


def barrier(env: DistEnv, shard_dirs: Sequence[Path], *, use_torch: bool) -> None:
    """Wait until every rank finished its shard (rank 0 then merges)."""
    dist = _dist() if use_torch else None
    if dist is not None and dist.is_initialized():
        dist.barrier()
        return
    if env.is_main:
        wait_for_shards(shard_dirs, timeout_s=DEFAULT_TIMEOUT_S)


def wait_for_shards(shard_dirs: Sequence[Path], *, timeout_s: float, poll_s: float = 1.0) -> None:
    """File barrier: poll each shard's run.json until its status is complete (or failed)."""
    deadline = time.monotonic() + timeout_s
    pending = list(shard_dirs)
    while pending:
        still = []
        for directory in pending:
            status = run_status(directory)
            if status == "failed":
                raise ReasonSegXError(f"shard {directory} failed; see its run.json and that rank's log")
            if status != "complete":
                still.append(directory)
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise ReasonSegXError(f"timed out waiting for shards: {', '.join(str(p) for p in pending)}")
            time.sleep(poll_s)


def require_visible(shard_dirs: Sequence[Path]) -> None:
    """After the barrier every shard has finished; if rank 0 cannot see one, the nodes do not share ``--out``."""
    unseen = [d for d in shard_dirs if not is_run_folder(d)]
    if unseen:
        raise ReasonSegXError(
            f"rank 0 cannot see {len(unseen)} of {len(shard_dirs)} finished shard folders (e.g. {unseen[0]}): with "
            "several nodes, --out must be on a filesystem every node shares. Otherwise copy the shard-*-of-* "
            "folders into one folder and run `reasonseg-x merge FOLDER --out FOLDER`")


def teardown() -> None:
    """Leave the process group (skipping it occasionally aborts a gloo run at exit)."""
    dist = sys.modules.get("torch.distributed")
    if dist is None:
        return
    try:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - exiting anyway
        pass


def run_distributed(config: EvalConfig, env: DistEnv, *, progress: Any = None, source: Any = None, bound: Any = None,
                    on_shard: Callable[[EvalOutcome], None] | None = None) -> MergeOutcome | None:
    """This rank's shard into ``OUT/shard-<rank>-of-<world>`` (unscored), then the barrier; rank 0
    merges the shards into ``OUT`` and scores (returned), the other ranks return None.
    ``on_shard`` hears each rank's own outcome before the wait."""
    from reasonseg_x.runner.evaluate import run_eval
    from reasonseg_x.runner.merge import merge_runs
    from reasonseg_x.runner.shards import shard_dirname

    use_torch = setup(env)
    try:
        config.num_shards, config.shard_id, config.score = env.world_size, env.rank, False
        outcome = run_eval(config, progress=progress, source=source, bound=bound)
        if on_shard is not None:
            on_shard(outcome)
        shard_dirs = [Path(str(config.out)) / shard_dirname(i, env.world_size) for i in range(env.world_size)]
        barrier(env, shard_dirs, use_torch=use_torch)
        if not env.is_main:
            return None
        require_visible(shard_dirs)
        return merge_runs(shard_dirs, str(config.out), source=outcome.source, protocol=config.protocol,
                          strict=config.strict, seed=config.seed, fresh=config.fresh)
    finally:
        teardown()
