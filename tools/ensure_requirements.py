"""Install requirements.txt only when something is missing or out of range.

``pip install -r requirements.txt`` on a satisfied environment still takes several seconds
and may touch the network; this check reads installed metadata and returns in well under a
second, so ``make test`` / ``make demo`` stay fast on the second run.

Usage: python tools/ensure_requirements.py [requirements.txt] [--no-deps FILE]

Files after ``--no-deps`` are installed with ``pip install --no-deps -r FILE``: their
packages declare a dependency that must not be installed (``imagecorruptions`` requires
``opencv-python``, which would be installed next to ``opencv-python-headless`` into the same
``cv2`` folder); their real requirements are listed in ``requirements.txt``.
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


def parse_argv(argv):
    """``[prog, FILE..., --no-deps FILE...]`` -> [(file, no_deps)]; default requirements.txt."""
    files, no_deps = [], False
    for arg in argv[1:]:
        if arg == "--no-deps":
            no_deps = True
            continue
        files.append((arg, no_deps))
        no_deps = False
    return files or [("requirements.txt", False)]


def main(argv):
    status = 0
    for requirements_file, no_deps in parse_argv(argv):
        missing = unsatisfied(requirements_file)
        if not missing:
            continue
        print("installing missing requirements:", ", ".join(missing), flush=True)
        command = [sys.executable, "-m", "pip", "install", *(["--no-deps"] if no_deps else []),
                   "-r", requirements_file]
        status = status or subprocess.call(command)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
