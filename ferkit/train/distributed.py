"""Single-process and ``torchrun`` (DistributedDataParallel) set-up: device, process group, small collectives.

``torchrun --nproc_per_node N -m ferkit train CONFIG`` sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``; the backend
is NCCL on CUDA and Gloo on CPU. Without those variables everything runs in one process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits. ``is_main`` is rank 0 (the one that writes files)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def rank_device(spec: str, local_rank: int = 0) -> torch.device:
    """:func:`ferkit.device.resolve_device`, with a bare ``cuda`` (or ``auto`` on a GPU machine) meaning
    ``cuda:LOCAL_RANK`` so each DDP process takes its own GPU."""
    from ferkit.device import resolve_device as _resolve

    dev = _resolve(spec)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def setup(device: str = "auto") -> DistInfo:
    """Initialise the process group when launched by ``torchrun`` (idempotent) and pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = rank_device(device, local)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend)
        log.info("process group: backend %s, rank %d of %d, device %s", backend, rank, world, dev)
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over processes in place (a no-op in one process). Returns ``t``."""
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]

