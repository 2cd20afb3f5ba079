"""The Markdown of a gpu_check.json: the headline table, then one line per section."""

import json


def _fmt(value, digits=1):
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def headline(report):
    """Card, per step variant: ms/step, images/s, peak memory, % of bf16 peak; syncs per
    step and loader cores per GPU."""
    sections = report["sections"]
    variants = sections.get("step", {}).get("variants", {})
    syncs = sections.get("syncs", {}).get("off", {})
    loader = sections.get("loader", {})
    lines = [f"Card: **{report['device']}**; torch {report['torch']}, CUDA {report['cuda']}, "
             f"cuDNN {report['cudnn']}; syncs per fp32 step: "
             f"{_fmt(syncs.get('syncs_per_step'))} (operators that force one: "
             f"{_fmt(syncs.get('sync_ops_per_step'))}); loader cores per GPU: "
             f"{_fmt(loader.get('loader_cores_per_gpu'))}.", "",
             "| step | ms/step | images/s | peak memory (GiB) | model TFLOP/s | % of bf16 peak |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, entry in variants.items():
        if entry.get("status") != "ok":
            lines.append(f"| {name} | {entry.get('status')}: "
                         f"{entry.get('error') or entry.get('skipped') or ''} | | | | |")
            continue
        lines.append(f"| {name} | {_fmt(entry.get('ms_per_step'))} | "
                     f"{_fmt(entry.get('images_per_s'))} | "
                     f"{_fmt(entry.get('peak_memory_gib'), 2)} | "
                     f"{_fmt(entry.get('model_tflops'))} | "
                     f"{_fmt(entry.get('pct_of_bf16_peak'))} |")
    return "\n".join(lines)


def _summary(name, entry):
    """One line of figures per section (the JSON holds everything)."""
    if entry.get("status") != "ok":
        reason = entry.get("error") or entry.get("reason") or entry.get("skipped") or ""
        return reason.strip().splitlines()[-1][:300] if reason.strip() else ""
    if name == "step":
        return json.dumps({variant: v.get("ms_per_step", v["status"])
                           for variant, v in entry["variants"].items()})
    if name in ("amp", "syncs"):
        return json.dumps({mode: {k: v for k, v in figures.items()
                                  if k in ("finite", "skipped_steps", "final_scale",
                                           "syncs_per_step", "sync_ops_per_step")}
                           for mode, figures in entry.items() if isinstance(figures, dict)
                           and mode != "fp32_covariance"}, default=str)
    keep = {"env": ("device", "sms", "memory_gib", "bf16_native", "host_cpu_cores",
                    "missing_packages"),
            "tests": ("passed", "failed", "errors", "skipped"),
            "equality": ("worst", "worst_value"),
            "resume": ("bitwise_equal", "max_abs_diff", "all_tensors_cpu",
                       "nondeterministic_ops_warned"),
            "loader": ("samples_per_s", "loader_cores_per_gpu"),
            "demo": ("timings_s",)}.get(name)
    if keep is None:
        return json.dumps({k: v for k, v in entry.items()
                           if k not in ("status", "seconds", "table")}, default=str)[:400]
    return json.dumps({k: entry.get(k) for k in keep}, default=str)[:400]


def markdown(report):
    """The whole gpu_check.md."""
    lines = [f"# GPU check: {report['device']} ({report['date']})", "",
             f"`{report['command']}`: {report['seconds']:.0f} s"
             + (" (--quick: tiny sizes, not a measurement)" if report["quick"] else ""), "",
             headline(report), "", "| section | status | seconds | figures |",
             "|---|---|---:|---|"]
    for name, entry in report["sections"].items():
        figures = _summary(name, entry).replace("|", "/")
        lines.append(f"| {name} | {entry['status']} | {entry.get('seconds', 0):.1f} | "
                     f"{figures} |")
    demo = report["sections"].get("demo", {})
    if demo.get("table"):
        lines += ["", "Demo mIoU (%):", "", demo["table"]]
    return "\n".join(lines) + "\n"
