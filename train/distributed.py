"""torchrun / DDP plumbing. One process without torchrun; with it, one process per device (gloo on CPU, NCCL on CUDA).

Every process computes the same global batch (data, noise, timesteps: all pure functions of the seed and the step)
and trains on its own contiguous slice; DDP averages gradients, so the update equals one process on the whole batch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def slice(self, n: int) -> slice:
        per = n // self.size
        return slice(self.rank * per, (self.rank + 1) * per)


def init(device_name: str = "auto") -> tuple[World, torch.device]:
    from qimage.device import pick_device

    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(), pick_device(device_name)
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    device = pick_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, device


def mean(value: torch.Tensor, world: World) -> torch.Tensor:
    """The mean of a scalar over processes."""
    if world.size == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / world.size


def gather(value: torch.Tensor, world: World) -> torch.Tensor:
    """The concatenation, in rank order, of every process's equally long 1-D tensor."""
    if world.size == 1:
        return value
    parts = [torch.empty_like(value) for _ in range(world.size)]
    dist.all_gather(parts, value.contiguous())
    return torch.cat(parts)


def any_true(flag: bool, world: World) -> bool:
    """True on every process when it is true on any (so all stop at the same step)."""
    if world.size == 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def shutdown(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
