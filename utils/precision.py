"""Mixed-precision helpers for ``--amp off|bf16|fp16`` (DECISIONS.md D11)."""

import contextlib

import torch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device, amp="off"):
    """Autocast context for ``device`` (a torch.device) or a no-op context when ``amp='off'``."""
    if amp == "off":
        return contextlib.nullcontext()
    if amp not in AMP_DTYPES:
        raise ValueError(f"--amp must be off, bf16 or fp16, got {amp!r}")
    if amp == "fp16" and device.type == "cpu":
        raise ValueError("--amp fp16 needs a GPU; use --amp bf16 on CPU")
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


def float32_region(device):
    """A context in which autocast is off on ``device``: the losses' matrix products stay
    float32 under ``--amp`` (the meta device, used for shape checks, has no autocast)."""
    if torch.device(device).type == "meta":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, enabled=False)


def grad_scaler(device, amp="off"):
    """A GradScaler that is active only for fp16 (bf16 and fp32 need no loss scaling)."""
    return torch.amp.GradScaler(device.type, enabled=(amp == "fp16"))
