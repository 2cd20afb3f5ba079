"""Install requirements.txt only when something is missing or out of range.

``pip install -r requirements.txt`` on a satisfied environment still takes several seconds
and may touch the network; this check reads installed metadata and returns in well under a
second, so ``make test`` / ``make demo`` stay fast on the second run.

Usage: python tools/ensure_requirements.py [requirements.txt]
"""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:  # pip always vendors packaging
    from pip._vendor.packaging.requirements import Requirement


def unsatisfied(requirements_file):
    """Requirement lines of ``requirements_file`` that the environment does not satisfy."""
    missing = []
    for line in Path(requirements_file).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(line)
            continue
        # Local version labels (2.14.1+cu130) must not fail a ">=2.1" range.
        if req.specifier and not req.specifier.contains(installed.split("+")[0],
                                                        prereleases=True):
            missing.append(f"{line} (installed {installed})")
    return missing


def main(argv):
    requirements_file = argv[1] if len(argv) > 1 else "requirements.txt"
    missing = unsatisfied(requirements_file)
    if not missing:
        return 0
    print("installing missing requirements:", ", ".join(missing), flush=True)
    return subprocess.call([sys.executable, "-m", "pip", "install", "-r", requirements_file])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
