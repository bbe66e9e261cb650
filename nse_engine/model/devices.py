"""The devices of this machine: choosing the compute device and dtype (CUDA > MPS > CPU, float32
on CPU, half precision on GPUs), and what each device can hold, for the memory plan."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

CPU = "cpu"


@dataclass(frozen=True)
class Device:
    """A device and the bytes it can give the engine."""

    name: str  # "cpu", "cuda:0", "mps"
    capacity: int

    @property
    def is_gpu(self) -> bool:
        return self.name != CPU


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def pick_device(preference: str | None = None) -> torch.device:
    """The best available device, or the one the user named ("cpu", "cuda", "cuda:1", "mps")."""
    if preference and preference != "auto":
        device = torch.device(preference)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("CUDA was requested but no CUDA device is available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("MPS was requested but it is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, preference: str | None = None) -> torch.dtype:
    """float32 on CPU; bfloat16 on GPUs that support it, else float16; or the user's choice."""
    if preference and preference != "auto":
        try:
            return _DTYPES[preference.lower()]
        except KeyError:
            raise ValueError(f"unknown dtype {preference!r}; use one of {sorted(set(_DTYPES))}") from None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def bf16_speedup(device: torch.device) -> float:
    """How many times faster `device` multiplies in bf16 than in float32, timed on a product of the
    statistics' size ((1024, 1536) @ (1536, 1536), the median of five after a warm-up): well above 1
    on bf16 matrix units (AMX, tensor cores), below 1 where bf16 is emulated; 0 where bf16 fails."""
    try:
        return _product_seconds(device, torch.float32) / _product_seconds(device, torch.bfloat16)
    except (RuntimeError, TypeError):
        return 0.0


def _product_seconds(device: torch.device, dtype: torch.dtype) -> float:
    a = torch.randn(1024, 1536, device=device).to(dtype)
    b = torch.randn(1536, 1536, device=device).to(dtype)
    a @ b  # warm-up
    times = []
    for _ in range(5):
        _synchronize(device)
        start = time.perf_counter()
        a @ b
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def free_memory_bytes(device: torch.device) -> int:
    """Memory available for new allocations on `device`."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def total_memory(device: torch.device) -> int:
    """All the memory of a GPU (what the plan measures it against); 0 for the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    if device.type == "mps":
        return int(torch.mps.recommended_max_memory())
    return 0


def devices_holding(placed: dict[str, str]) -> tuple[Device, ...]:
    """The GPUs that `placed` (placement unit -> device) puts weights on, then the CPU, each with
    its whole memory."""
    import psutil

    gpus = sorted(set(placed.values()) - {CPU})
    return (*(Device(g, total_memory(torch.device(g))) for g in gpus), Device(CPU, int(psutil.virtual_memory().total)))
