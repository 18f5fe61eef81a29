"""Which device a process computes on: ``auto`` means CUDA when there is one."""

import torch


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def process_devices(device: str, processes: int = 0) -> list[str]:
    """One device per scoring process: every GPU when ``device`` is auto/cuda and
    ``processes`` is 0, else ``processes`` copies of the device, the GPUs taken in turn (on
    the CPU: for tests)."""
    device = resolve_device(device)
    gpus = max(1, torch.cuda.device_count())
    if device == "cuda" and processes == 0:
        return [f"cuda:{i}" for i in range(gpus)]
    if device == "cuda":
        return [f"cuda:{i % gpus}" for i in range(processes)]
    return [device] * max(1, processes)
