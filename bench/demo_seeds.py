"""The demo's comparison (baseline vs BlindNet, or any ``--methods``) over several training
seeds: mean and spread.

    python bench/demo_seeds.py                      # 3 seeds, the demo's defaults (~25 min CPU)
    python bench/demo_seeds.py --seeds 1 2 3 4 5 -- --iters 1000 --arch ... --pretrained ...
    python bench/demo_seeds.py -- --methods baseline ibn iw irw isw blindnet   # every row

Every method given to ``demo.py --methods`` gets a column (mean ± std and the per-seed
values); with exactly two methods a difference column (second − first) is added.

Arguments after ``--`` go to ``demo.py`` unchanged. The benchmark data are generated once
(same data seed for every run); only the training seed changes. Writes
``<out>/seeds.json`` and ``<out>/seeds.md`` and prints the table.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import demo  # noqa: E402  (needs the repository root on sys.path)
from config import REPO_ROOT  # noqa: E402


def parse_args(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    demo_argv = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[304, 305, 306])
    p.add_argument("--out", default=str(REPO_ROOT / "demo_output" / "seeds"))
    return p.parse_args(argv), demo_argv


def aggregate(runs):
    """{seed: {domain: {method: miou}}} -> {domain: {method: (mean, std)}} in % (std ddof=1)."""
    domains = list(next(iter(runs.values())))
    methods = list(next(iter(runs.values()))[domains[0]])
    table = {}
    for domain in domains + ["mean of targets"]:
        table[domain] = {}
        for method in methods + (["delta"] if len(methods) == 2 else []):
            values = [100 * _value(run, domain, method, methods) for run in runs.values()]
            spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            table[domain][method] = (float(np.mean(values)), spread, values)
    return table


def _value(run, domain, method, methods):
    if domain == "mean of targets":
        targets = [d for d in run if d != demo.SOURCE_DOMAIN]
        return float(np.mean([_value(run, d, method, methods) for d in targets]))
    if method == "delta":
        return run[domain][methods[1]] - run[domain][methods[0]]
    return run[domain][method]


def markdown(table, seeds):
    methods = list(next(iter(table.values())))
    lines = [f"mIoU (%) over seeds {', '.join(map(str, seeds))}: mean ± std (per-seed values)",
             "", "| domain | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 1)]
    for domain, row in table.items():
        cells = [f"{m:+.1f} ± {s:.1f} ({', '.join(f'{v:+.1f}' for v in vals)})"
                 if method == "delta" else
                 f"{m:.1f} ± {s:.1f} ({', '.join(f'{v:.1f}' for v in vals)})"
                 for method, (m, s, vals) in row.items()]
        lines.append(f"| {domain} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    args, demo_argv = parse_args(argv)
    out = Path(args.out)
    runs = {}
    for seed in args.seeds:
        results = demo.main(demo_argv + ["--seed", str(seed), "--out", str(out / f"seed{seed}")])
        runs[seed] = {domain: {method: res["miou"] for method, res in per_method.items()}
                      for domain, per_method in results.items()}
    table = aggregate(runs)
    text = markdown(table, args.seeds)
    (out / "seeds.md").write_text(text + "\n")
    (out / "seeds.json").write_text(json.dumps({"seeds": args.seeds, "demo_args": demo_argv,
                                                "runs": runs, "summary": table}, indent=2))
    print("\n" + text)
    return table


if __name__ == "__main__":
    main()
