"""Choosing the compute device and dtype: CUDA > MPS > CPU, float32 on CPU, half precision on GPUs."""

from __future__ import annotations

import torch

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


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def free_memory_bytes(device: torch.device) -> int:
    """Memory available for new allocations on `device`."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)
