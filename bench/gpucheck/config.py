"""What bench/gpu_check.py runs, at which size, within which time (docs/GPU.md, "Budget").

Every section runs in its own process, killed at its cap; the caps of the full run add up to
:data:`FULL_BUDGET_S`, inside the 8 minutes one H100 loan allows with room for start-up.
``--quick`` (CPU, the test) shrinks every size and gives generous caps instead: a shared
2-core machine can be many times slower than usual, and the test must not flake on it.
"""

SECTIONS = ("env", "tests", "equality", "step", "syncs", "amp", "resume", "eval", "loader",
            "demo")

# Seconds per section on one H100 (full run); see docs/GPU.md for what each one spends.
FULL_CAPS_S = {"env": 10, "tests": 60, "equality": 25, "step": 195, "syncs": 20, "amp": 25,
               "resume": 30, "eval": 25, "loader": 40, "demo": 45}
FULL_BUDGET_S = 470          # the whole run; a late section gets what is left of it
QUICK_CAP_S = 600            # --quick: per section (the slow test's machine is shared)
QUICK_BUDGET_S = 3600
COMPILE_CAP_S = 120          # the --compile step variant: "when it compiles within 120 s"

OFFICIAL_ARCH = "network.deepv3.DeepR50V3PlusD"
REIN_ARCH = "network.vfm.ReinDinov2LMask2Former"
SMALL_ARCH = "network.deepv3.DeepR18V3PlusD"
BLINDNET_WT_LAYER = (0, 0, 1, 1, 1, 0, 0)
# The official BlindNet criterion (scripts/blindnet_train_r50os16_gtav.sh).
BLINDNET_LOSSES = dict(use_ca=True, use_cwcl=True, use_sdcl=True, w1=0.2, w2=0.2, w3=0.3,
                       w4=0.3, nce_T=0.07, contrast_max_classes=15, contrast_max_views=50,
                       num_patch=20)

# The training-step variants of the `step` section, each in its own process. A new model
# (e.g. a ViT-L Rein step) is one more entry: name, method (blindnet: two views and the four
# losses; baseline: one view), amp, channels_last, compile, arch (default: the size's arch).
STEP_CONFIGS = (
    {"name": "fp32", "method": "blindnet", "amp": "off"},
    {"name": "bf16", "method": "blindnet", "amp": "bf16"},
    {"name": "bf16_channels_last", "method": "blindnet", "amp": "bf16", "channels_last": True},
    {"name": "baseline_fp32", "method": "baseline", "amp": "off"},
    # Rein on DINOv2-L + Mask2Former at Rein's batch (1 x 4 images of 512x512), bf16, AdamW
    # (docs/VFM.md); its own crop and batch, the VFM sizes below under --quick.
    {"name": "rein_vitl_bf16", "method": "rein", "amp": "bf16", "arch": REIN_ARCH, "crop": 512,
     "batch": 4},
    {"name": "bf16_channels_last_compile", "method": "blindnet", "amp": "bf16",
     "channels_last": True, "compile": True},
)
# The Rein step under --quick: a 2-block ViT-S with a small head, crop 32.
QUICK_REIN = {"arch": "network.vfm.ReinDinov2SMask2Former", "crop": 32, "batch": 2,
              "arch_options": {"depth": 2, "num_queries": 4, "num_decoder_layers": 1,
                               "pixel_decoder_layers": 1, "img_size": 32}}
# Rein's optimizer (docs/VFM_METHODS.md §3.5).
REIN_OPTIM = {"optimizer": "adamw", "lr": 1e-4, "weight_decay": 0.05}

FULL = {
    "step": {"arch": OFFICIAL_ARCH, "crop": 768, "batch": 4, "warmup": 10, "iters": 20},
    "equality": {"arch": SMALL_ARCH, "crop": 256, "batch": 2},
    "syncs": {"arch": OFFICIAL_ARCH, "crop": 256, "batch": 2, "warmup": 2},
    "amp": {"arch": OFFICIAL_ARCH, "crop": 384, "batch": 2, "steps": 50, "lr": 0.01},
    "resume": {"arch": SMALL_ARCH, "crop": 256, "batch": 2, "image": (512, 1024)},
    "eval": {"arch": OFFICIAL_ARCH, "image": (1024, 2048), "window": 768, "warmup": 2,
             "iters": 5},
    "loader": {"image": (1052, 1914), "images": 16, "crop": 768, "batch": 4,
               "workers": (1, 4, 8, 16), "seconds": 4.0},
    "demo": ["--size", "256", "512", "--crop", "256", "--iters", "300", "--n_train", "200",
             "--n_eval", "20", "--workers", "8"],
    "tests": [],  # the whole suite: `pytest --device cuda` runs its device-capable tests
}
# Quick: R18, crop 32, one or two steps; the contrastive losses sample fewer anchors (same
# code paths, a fraction of the CPU time).
QUICK_LOSSES = {"contrast_max_views": 8, "num_patch": 4}
QUICK = {
    "step": {"arch": SMALL_ARCH, "crop": 32, "batch": 2, "warmup": 1, "iters": 1,
             "losses": QUICK_LOSSES},
    "equality": {"arch": SMALL_ARCH, "crop": 32, "batch": 2, "losses": QUICK_LOSSES},
    "syncs": {"arch": SMALL_ARCH, "crop": 32, "batch": 2, "warmup": 1, "losses": QUICK_LOSSES},
    "amp": {"arch": SMALL_ARCH, "crop": 32, "batch": 2, "steps": 2, "lr": 0.01,
            "losses": QUICK_LOSSES},
    "resume": {"arch": SMALL_ARCH, "crop": 32, "batch": 2, "image": (64, 96)},
    "eval": {"arch": SMALL_ARCH, "image": (64, 128), "window": 64, "warmup": 1, "iters": 1},
    "loader": {"image": (96, 160), "images": 4, "crop": 32, "batch": 2, "workers": (1, 2),
               "seconds": 0.5},
    "demo": ["--size", "64", "128", "--crop", "64", "--iters", "2", "--n_train", "16",
             "--n_eval", "2", "--bs", "2", "--workers", "0", "--styles", "fog"],
    "tests": ["tests/engine/test_amp.py", "tests/loss/test_generator_device.py"],
}

# Dense (no sparsity) bfloat16 tensor-core peak, TFLOP/s, by device-name fragment (vendor
# data sheets); the first fragment found in torch.cuda.get_device_name() wins.
BF16_DENSE_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4), ("H200", 989.4),
    ("GH200", 989.4), ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0), ("L40", 181.0),
    ("L4", 121.0),
    ("A10G", 70.0), ("A10", 125.0), ("RTX 4090", 165.2), ("RTX 3090", 71.0),
)


def bf16_peak_tflops(device_name):
    """The dense bf16 peak of ``device_name`` in TFLOP/s, or None when not in the table."""
    for fragment, peak in BF16_DENSE_PEAK_TFLOPS:
        if fragment in (device_name or ""):
            return peak
    return None
