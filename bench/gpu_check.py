"""One prepared run that tells what a first GPU run would (docs/GPU.md).

    python bench/gpu_check.py --out logs/gpu_check                  # CUDA, full sizes, < 8 min
    python bench/gpu_check.py --out /tmp/check --device cpu --quick # the same sections, tiny
    make gpu-check                                                  # the first line

Runs the sections env, tests, equality, step, syncs, amp, resume, eval, loader, demo in
order, each in its own process killed at its time cap (bench/gpucheck/config.py); a failing
section is recorded (its exception text) and the run goes on. Writes ``DIR/gpu_check.json``
(``device``, ``torch``, ``cuda``, ``cudnn``, ``sections: {name: {status, seconds, ...}}``) and
``DIR/gpu_check.md`` (printed too); each section's log is in ``DIR/logs/``. Installs nothing.
Exit code 0 when no section failed, 1 otherwise.
"""

import argparse
import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

from gpucheck import config as check_config  # noqa: E402
from gpucheck.report import markdown  # noqa: E402

MIN_SECTION_S = 5  # a section gets at least this much of the budget, or is skipped


def _section_functions():
    from gpucheck import model_sections, run_sections, throughput_sections

    return {"env": run_sections.env, "tests": run_sections.tests,
            "equality": model_sections.equality, "step": model_sections.step,
            "syncs": model_sections.syncs, "amp": model_sections.amp,
            "resume": run_sections.resume, "eval": throughput_sections.eval_speed,
            "loader": throughput_sections.loader, "demo": run_sections.demo}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder of gpu_check.json / .md")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (R18, small crops, few steps): tests the check itself")
    parser.add_argument("--sections", nargs="+", default=list(check_config.SECTIONS),
                        choices=check_config.SECTIONS, metavar="NAME",
                        help="run only these (default: all, in order)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole run (default: 470 full, 3600 --quick)")
    parser.add_argument("--section", choices=check_config.SECTIONS, help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == "cuda" and args.section is None:
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device here (torch.cuda.is_available() is "
                         "False); use --device cpu --quick to test the check itself")
    return args


def run_section(args):
    """Child mode: one section (or step variant) in this process; writes its JSON."""
    import torch

    from gpucheck.common import Context

    sizes = (check_config.QUICK if args.quick else check_config.FULL).get(args.section)
    ctx = Context(args.section, torch.device(args.device), args.quick, Path(args.out), sizes,
                  args.variant)
    start = time.perf_counter()
    try:
        figures = _section_functions()[args.section](ctx)
        status = "skipped" if set(figures) == {"skipped"} else "ok"
    except Exception:  # recorded, not raised: the next section still runs
        previous = ctx.result_path()
        figures = json.loads(previous.read_text()) if previous.is_file() else {}
        status, figures["error"] = "failed", traceback.format_exc()[-4000:]
    figures.pop("partial", None)
    ctx.result_path().parent.mkdir(parents=True, exist_ok=True)
    ctx.result_path().write_text(json.dumps(
        {"status": status, "seconds": round(time.perf_counter() - start, 2), **figures},
        indent=2, default=str))
    return 0


def _child(args, name, cap, variant=None):
    """Run section ``name`` in a child process killed after ``cap`` seconds; its result."""
    out = Path(args.out)
    label = name + (f"_{variant}" if variant else "")
    result_path = out / "sections" / f"{label}.json"
    result_path.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--section", name, "--out",
               str(out), "--device", args.device] + (["--quick"] if args.quick else []) + (
        ["--variant", variant] if variant else [])
    (out / "logs").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with (out / "logs" / f"{label}.log").open("w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, env={**os.environ,
                                                              "PYTHONUNBUFFERED": "1"})
        try:
            child.wait(timeout=cap)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the section and everything it started
            child.wait()
            timed_out = True
    seconds = round(time.perf_counter() - start, 2)
    result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    result.pop("partial", None)
    if timed_out:
        return {**result, "status": "failed", "seconds": seconds,
                "error": f"timed out after its cap of {cap:.0f} s"}
    if not result:
        tail = (out / "logs" / f"{label}.log").read_text()[-3000:]
        return {"status": "failed", "seconds": seconds,
                "error": f"exit code {child.returncode}, no result; log tail:\n{tail}"}
    return {**result, "seconds": seconds}


def _step_section(args, cap):
    """Every step configuration in its own process; compile gets COMPILE_CAP_S at most."""
    deadline, variants = time.perf_counter() + cap, {}
    for entry in check_config.STEP_CONFIGS:
        left = deadline - time.perf_counter()
        if left < MIN_SECTION_S:
            variants[entry["name"]] = {"status": "skipped", "seconds": 0,
                                       "skipped": "the step section's cap was spent"}
            continue
        limit = min(left, check_config.COMPILE_CAP_S) if entry.get("compile") else left
        result = _child(args, "step", limit, entry["name"])
        if entry.get("compile") and result["status"] == "failed" and "timed out" in \
                result.get("error", ""):
            result = {"status": "skipped", "seconds": result["seconds"],
                      "skipped": f"did not compile and run within {limit:.0f} s"}
        variants[entry["name"]] = result
    failed = [name for name, v in variants.items() if v["status"] == "failed"]
    return {"status": "failed" if failed else "ok",
            "seconds": round(sum(v["seconds"] for v in variants.values()), 2),
            "variants": variants, **({"error": f"failed: {', '.join(failed)}"} if failed else {})}


def orchestrate(args, argv):
    out = Path(args.out)
    (out / "sections").mkdir(parents=True, exist_ok=True)
    budget = args.budget or (check_config.QUICK_BUDGET_S if args.quick
                             else check_config.FULL_BUDGET_S)
    start = time.perf_counter()
    sections = {}
    for name in [s for s in check_config.SECTIONS if s in args.sections]:
        cap = check_config.QUICK_CAP_S if args.quick else check_config.FULL_CAPS_S[name]
        cap = min(cap, budget - (time.perf_counter() - start))
        if cap < MIN_SECTION_S:
            sections[name] = {"status": "skipped", "seconds": 0,
                              "reason": f"the run's {budget:.0f} s budget was spent"}
        elif name == "step":
            sections[name] = _step_section(args, cap)
        else:
            sections[name] = _child(args, name, cap)
        print(f"[gpu_check] {name}: {sections[name]['status']} "
              f"({sections[name]['seconds']:.1f} s)", flush=True)
    report = _report(args, argv, sections, time.perf_counter() - start, budget)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    text = markdown(report)
    (out / "gpu_check.md").write_text(text)
    print(text)
    return 1 if any(s["status"] == "failed" for s in sections.values()) else 0


def _report(args, argv, sections, seconds, budget):
    import torch

    env = sections.get("env", {})
    return {"device": env.get("device", args.device), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": env.get("cudnn"), "quick": args.quick,
            "date": datetime.date.today().isoformat(),
            "command": "python bench/gpu_check.py " + shlex.join(argv),
            "seconds": round(seconds, 1), "budget_s": budget, "sections": sections}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.section:
        return run_section(args)
    return orchestrate(args, argv)


if __name__ == "__main__":
    sys.exit(main())
