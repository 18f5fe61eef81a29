"""Where a training process runs: its device, and its place among the processes ``torchrun``
started (rank, world size); losses averaged across them."""

import os

import torch


def train_device(name: str, local_rank: int | None = None) -> str:
    """``auto`` -> CUDA when there is one; ``cuda`` -> this process's GPU (``LOCAL_RANK``)."""
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return f"cuda:{local_rank}" if name == "cuda" else name


def join(device: str) -> tuple[int, int]:
    """(rank, world size); joins the process group when ``torchrun`` started several."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def mean_across(value: float, world: int) -> float:
    """The mean of ``value`` over the ``world`` processes."""
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return float(t[0]) / world


def barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()
