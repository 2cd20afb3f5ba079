"""Mixed-precision helpers for ``--amp off|bf16|fp16`` (DECISIONS.md D11)."""

import contextlib

import torch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


# bfloat16 tensor-core kernels start with compute capability 8.0 (Ampere); older GPUs only
# emulate it, far slower than fp16 or fp32.
BF16_MIN_CAPABILITY = (8, 0)


def check_amp_support(device, amp="off"):
    """Start-up check that ``--amp`` runs natively on ``device`` (a torch.device).

    Raises ValueError naming ``--amp``: fp16 on the CPU (GradScaler's fp16 path is for GPUs),
    bf16 on a GPU below compute capability 8.0 (pre-Ampere: no native bfloat16).
    """
    if amp == "fp16" and device.type == "cpu":
        raise ValueError("--amp fp16 needs a GPU; use --amp bf16 on CPU")
    if amp == "bf16" and device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        if tuple(capability) < BF16_MIN_CAPABILITY:
            raise ValueError(
                f"--amp bf16: {torch.cuda.get_device_name(device)} (compute capability "
                f"{capability[0]}.{capability[1]}) has no native bfloat16 (needs "
                f"{BF16_MIN_CAPABILITY[0]}.{BF16_MIN_CAPABILITY[1]}, Ampere or newer); use "
                f"--amp fp16 or --amp off")


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
