"""Sections on the training step itself: ``equality`` (CPU vs device), ``step`` (speed of each
step configuration), ``syncs`` (host-device synchronisations) and ``amp`` (fp16 / bf16)."""

import copy
import math
import warnings

import torch

from gpucheck.common import (build_method, captured_stderr, median_ms, peak_memory_gib,
                             relative_difference, reset_peak_memory, run_step, synthetic_batch,
                             train_state, training_gflops, vfm_training_gflops)
from gpucheck.config import QUICK_REIN, REIN_OPTIM, STEP_CONFIGS, bf16_peak_tflops
from utils.op_trace import HOST_SYNC, OpTrace
from utils.precision import autocast

# Gradients compared by `equality`: the first parameter under each of these names.
GRADIENT_PREFIXES = ("layer0.", "layer3.", "aspp.", "final2.", "dsn.", "ProjectionHead_cls_2.")


def _no_dropout(model):
    """Train mode with the dropout layers off: their masks come from each device's RNG."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.eval()
    return model


def _forward_terms(model, criterion, item, seed):
    output = model(item["image"], item["image_aug"], with_embeddings=True)
    terms = criterion(output, item["label"], torch.Generator().manual_seed(seed))
    terms["total"].backward()
    return output.original.logits, terms


def equality(ctx):
    """One R18 BlindNet step (+ RobustNet's ``wt`` term) in fp32 with TF32 off, on the CPU and
    on the device, from the same weights, inputs and sampler seed: max relative differences."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    size = ctx.sizes
    cpu_model, criterion = build_method(size["arch"], "blindnet", "cpu", whitening="iw",
                                        losses=size.get("losses"))
    dev_model = _no_dropout(copy.deepcopy(cpu_model).to(ctx.device))
    _no_dropout(cpu_model)
    item = synthetic_batch(size["batch"], size["crop"], True, torch.device("cpu"), seed=1)
    logits_cpu, terms_cpu = _forward_terms(cpu_model, criterion, item, seed=2)
    dev_item = {k: v.to(ctx.device) for k, v in item.items()}
    logits_dev, terms_dev = _forward_terms(dev_model, criterion.to(ctx.device), dev_item, seed=2)
    figures = {"logits": relative_difference(logits_cpu, logits_dev)}
    figures.update({f"loss_{name}": relative_difference(terms_cpu[name], terms_dev[name])
                    for name in terms_cpu})
    cpu_params, dev_params = dict(cpu_model.named_parameters()), dict(dev_model.named_parameters())
    for prefix in GRADIENT_PREFIXES:
        name = next(n for n in cpu_params if n.startswith(prefix))
        figures[f"grad_{name}"] = relative_difference(cpu_params[name].grad,
                                                      dev_params[name].grad)
    return {"max_rel_diff": figures, "worst": max(figures, key=figures.get),
            "worst_value": max(figures.values()), "arch": size["arch"], "crop": size["crop"]}


def _step_sizes(ctx, config):
    """``(arch, sizes)`` of a step variant: the section's, or the variant's own crop and
    batch (the Rein step; under --quick its tiny ViT, config.QUICK_REIN)."""
    size = dict(ctx.sizes)
    if config["method"] == "rein":
        own = QUICK_REIN if ctx.quick else config
        size.update(crop=own["crop"], batch=own["batch"], arch_options=own.get("arch_options"))
        return own["arch"], size
    return config.get("arch", size["arch"]), size


def step(ctx):
    """Each of config.STEP_CONFIGS (``ctx.variant``: one of them, as its own process)."""
    config = next(c for c in STEP_CONFIGS if c["name"] == ctx.variant)
    arch, size = _step_sizes(ctx, config)
    if config["amp"] == "bf16" and ctx.cuda and torch.cuda.get_device_capability()[0] < 8:
        return {"skipped": "no native bf16 on this GPU"}
    rein = config["method"] == "rein"
    model, criterion = build_method(arch, config["method"], ctx.device,
                                    losses=size.get("losses"),
                                    arch_options=size.get("arch_options"))
    if config.get("channels_last"):
        model.to(memory_format=torch.channels_last)
    state = train_state(model, ctx.device, config["amp"], **(REIN_OPTIM if rein else {}))
    if config.get("compile"):
        state.net = torch.compile(model, **({"backend": "eager"} if ctx.quick else {}))
    two_view = config["method"] == "blindnet"
    item = synthetic_batch(size["batch"], size["crop"], two_view, ctx.device)
    reset_peak_memory(ctx.device)
    ms, first_s = median_ms(
        lambda: run_step(state, item, criterion, ctx.device, config["amp"],
                         config.get("channels_last", False)),
        ctx.device, size["warmup"], size["iters"])
    images = size["batch"] * (2 if two_view else 1)
    figures = {**config, "arch": arch, "crop": size["crop"], "batch": size["batch"],
               "batch_per_view": size["batch"],
               "ms_per_step": round(ms, 2), "first_step_s": round(first_s, 2),
               "samples_per_s": round(1000 * size["batch"] / ms, 2),
               "images_per_s": round(1000 * images / ms, 2),
               "peak_memory_gib": peak_memory_gib(ctx.device)}
    gflops = (vfm_training_gflops(arch, size["crop"], size["batch"], size.get("arch_options"))
              if rein else training_gflops(ctx, arch, size["crop"], images))
    if gflops is not None:
        tflops = gflops / ms  # GFLOP per ms = TFLOP/s
        peak = bf16_peak_tflops(torch.cuda.get_device_name() if ctx.cuda else None)
        figures.update(model_tflops=round(tflops, 3),
                       pct_of_bf16_peak=None if peak is None else round(100 * tflops / peak, 1))
    return figures


SYNC_WARNING = "called a synchronizing CUDA operation"


def _sync_warnings(ctx, state, item, criterion, amp):
    """CUDA: one step under ``set_sync_debug_mode("warn")``: call site -> syncs (those
    warned from autograd's device thread, printed to stderr: ``<backward thread>``)."""
    from utils.op_trace import caller_site

    sites = {}

    def record(message, category, filename, lineno, file=None, line=None):
        if SYNC_WARNING in str(message):
            site = caller_site(("bench/",))
            sites[site] = sites.get(site, 0) + 1

    stderr = ctx.out / f"syncs_{amp}.stderr"
    with warnings.catch_warnings(), captured_stderr(stderr):
        warnings.simplefilter("always")
        warnings.showwarning = record
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run_step(state, item, criterion, ctx.device, amp)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    threads = stderr.read_text().count(SYNC_WARNING)
    if threads:
        sites["<backward thread>"] = threads
    return sites


def syncs(ctx):
    """Host-device synchronisations in one steady-state training step: on CUDA counted by
    PyTorch's sync debug mode (with their call sites); everywhere, the operators that force
    one (utils/op_trace.py HOST_SYNC) seen in the step. ``.tolist()`` / ``.cpu()`` of a
    device tensor are only seen by the CUDA count."""
    size, figures = ctx.sizes, {}
    for amp in ("off", "fp16") if ctx.cuda else ("off",):
        model, criterion = build_method(size["arch"], "blindnet", ctx.device,
                                        losses=size.get("losses"))
        state = train_state(model, ctx.device, amp)
        item = synthetic_batch(size["batch"], size["crop"], True, ctx.device)
        for _ in range(size["warmup"]):
            run_step(state, item, criterion, ctx.device, amp)
        entry = {}
        if ctx.cuda:
            sites = _sync_warnings(ctx, state, item, criterion, amp)
            entry.update(syncs_per_step=sum(sites.values()), sites=sites)
        with OpTrace({"sync": HOST_SYNC}, skip_prefixes=("bench/",)) as trace:
            run_step(state, item, criterion, ctx.device, amp)
        predicted = {op: dict(sites) for op, sites in trace.sites["sync"].items()}
        entry.update(sync_ops=predicted, sync_ops_per_step=sum(
            sum(s.values()) for s in predicted.values()))
        figures[amp] = entry
        ctx.save_partial(figures)
    return figures


def _amp_run(ctx, amp, size):
    """``size['steps']`` steps at lr ``size['lr']``; the loss scale and skips under fp16."""
    model, criterion = build_method(size["arch"], "blindnet", ctx.device, seed=3,
                                    losses=size.get("losses"))
    state = train_state(model, ctx.device, amp if ctx.cuda or amp != "fp16" else "off",
                        lr=size["lr"])
    if amp == "fp16" and not ctx.cuda:  # no fp16 autocast on the CPU: GradScaler in fp32
        state.scaler = torch.amp.GradScaler("cpu")
    compute = amp if ctx.cuda or amp != "fp16" else "off"
    losses = []
    for k in range(size["steps"]):
        item = synthetic_batch(size["batch"], size["crop"], True, ctx.device, seed=k)
        losses.append(run_step(state, item, criterion, ctx.device, compute)["total"])
    finite = all(math.isfinite(v) for v in losses) and all(
        torch.isfinite(p).all().item() for p in model.parameters())
    return {"steps": size["steps"], "finite": finite, "first_loss": losses[0],
            "last_loss": losses[-1], "skipped_steps": state.skipped_steps,
            "final_scale": state.loss_scale, "compute": compute}


def _covariance_terms(ctx, amp, size):
    """CML and CCL of one batch under ``amp`` (same weights and batch for every amp)."""
    model, criterion = build_method(size["arch"], "blindnet", ctx.device, seed=4,
                                    losses=size.get("losses"))
    item = synthetic_batch(size["batch"], size["crop"], True, ctx.device, seed=9)
    with torch.no_grad(), autocast(ctx.device, amp):
        output = model(item["image"], item["image_aug"], with_embeddings=False)
        return {name: criterion.term(name)(output.original.in_feats,
                                           output.augmented.in_feats).float().item()
                for name in ("cml", "ccl")}


def amp(ctx):
    """fp16 (GradScaler) and bf16 training runs; CML / CCL under each against fp32."""
    size, figures = ctx.sizes, {}
    reference = _covariance_terms(ctx, "off", size)
    for precision in ("fp16", "bf16"):
        if precision == "bf16" and ctx.cuda and torch.cuda.get_device_capability()[0] < 8:
            figures[precision] = {"skipped": "no native bf16 on this GPU"}
            continue
        figures[precision] = _amp_run(ctx, precision, size)
        if ctx.cuda or precision == "bf16":
            terms = _covariance_terms(ctx, precision, size)
            figures[precision]["covariance_rel_diff"] = {
                name: abs(terms[name] - reference[name]) / max(abs(reference[name]), 1e-30)
                for name in terms}
        ctx.save_partial(figures)
    figures["fp32_covariance"] = reference
    return figures
