"""Devices and processes: where a run computes, and how torchrun's processes share it.

Under `torchrun --nproc_per_node N -m rnncount train ...` every process (rank) runs the same
program. Each takes its share of every global batch of one shuffled order (the same seed on every
rank gives the same order), DistributedDataParallel averages the gradients, sums of metrics are
added across ranks, and rank 0 alone prints and writes files. The result equals one process with
the same global batch size and seed, up to the order of floating-point additions.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'; ValueError if unavailable."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but CUDA is not available here")
        index = local_rank if device.index is None else device.index  # one GPU per torchrun process
        if index >= torch.cuda.device_count():
            raise ValueError(f"device cuda:{index} asked for, but there are {torch.cuda.device_count()} GPUs")
        return torch.device("cuda", index)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' asked for, but MPS is not available here")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


@dataclass
class World:
    """This process's place among the processes that train together (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, index: Tensor) -> Tensor:
        """This rank's contiguous part of a global batch's sample indices."""
        return index.tensor_split(self.size)[self.rank] if self.size > 1 else index

    def sum(self, tensor: Tensor) -> Tensor:
        """The tensor summed over all ranks (in place)."""
        if self.size > 1:
            dist.all_reduce(tensor)
        return tensor

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """DistributedDataParallel around the model when there are several processes."""
        if self.size == 1:
            return model
        return nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)

    def gather(self, value) -> list | None:
        """Every rank's value in rank order, on rank 0 (None on the others, and in a world of one)."""
        if self.size == 1:
            return None
        values = [None] * self.size if self.is_main else None
        dist.gather_object(value, values, dst=0)
        return values

    def agree(self, value):
        """Rank 0's value (a verdict, an error message, a checkpoint's contents or None), the same on every rank."""
        if self.size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def join_world(device_name: str = "auto") -> tuple[World, torch.device]:
    """Start the process group when launched by torchrun (gloo on CPU, nccl on CUDA); else a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if size == 1:
        return World(), device
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        _init_process_group(device)
    return World(dist.get_rank(), dist.get_world_size()), device


GENERATION = "rnncount/generation"  # a counter in torchrun's store: how many starts of the group have joined


def _init_process_group(device: torch.device) -> None:
    """init_process_group from torchrun's environment, with this start's keys kept apart from earlier starts'.

    torchrun keeps one store for every restart of a group (TORCHELASTIC_USE_AGENT_STORE=True), and the
    process group's keys have the same names in each start: a restarted rank could read the address a killed
    one published and fail with "Gloo connectFullMesh failed ... Connection refused" (pytorch/pytorch#135712;
    4 of 6 restarts here). Each start keys its group under a generation read from the store, and moves the
    counter on only after the barrier, when every rank has read it (10 of 10 restarts); every rank moves it,
    so that one killed right after the barrier does not hold it back.
    """
    store, rank, size = next(dist.rendezvous("env://"))
    generation = store.add(GENERATION, 0)  # 0 adds nothing: the value, created on the first start
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=size,
                            store=dist.PrefixStore(f"rnncount/{generation}", store))
    dist.barrier(device_ids=[device.index] if device.type == "cuda" else None)
    store.add(GENERATION, 1)


def lost_a_peer(error: BaseException) -> bool:
    """Whether error is this process's side of another process of the run dying mid-collective: gloo raises a
    plain RuntimeError naming the closed connection, NCCL and the store a DistError."""
    if not (dist.is_available() and dist.is_initialized()):
        return False
    return isinstance(error, getattr(dist, "DistError", ())) or "by peer" in str(error)


def leave_world() -> None:
    """Destroy the process group, then let gloo's worker threads drop their last collectives before exit.

    Once a DistributedDataParallel has used the group, gloo's worker threads outlive destroy_process_group (torch
    2.13: they stop only with the process), and each drops a collective's work after the caller has moved on.
    The drop frees tensors that Python made, which takes the GIL; if the interpreter is already finalizing then,
    the thread is unwound and the process aborts ("terminate called without an active exception", SIGABRT:
    3 of 18 runs of test_distributed's run on a loaded 2-core machine; the threads' stacks in gdb showed it).
    Sleeping releases the GIL to them first: 0 of 60 runs.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        time.sleep(0.1)
