"""Every reference in the Markdown pages (README.md, docs/, bench/results/) and every `*.md`
citation in the code resolves to a file of the repository, so a user can read what the code
and docs cite (issue 22).

What counts as a reference:
- a Markdown link `[text](target)` (relative to the page; a `#anchor` must name a heading of
  the target page);
- a mention of a `*.md` file, e.g. `DECISIONS.md`, `docs/GPU.md` (looked up next to the citing
  file, at the repository root and in `docs/`), except the names the programs write
  (`WRITTEN_BY_THE_PROGRAMS`);
- a section citation `FOO.md §3.4` (also `§2.4, §2.6`, `§3.1-3.4`): FOO.md must have a heading
  numbered 3.4;
- in a page, a path in backticks or a code block whose first component is a top-level file
  or folder of the repository and that names a file (`network/resnet.py`,
  `bench/results/x.md`, `scripts/{a,b}.sh`) or a folder (`docs/`). Pages that describe another
  project's source tree (RobustNet's `network/mynn.py`, ...) opt out of this one check with
  the line `<!-- paths: external -->`.
"""

import glob
import itertools
import re
from pathlib import Path

THIS_FILE = Path(__file__).resolve()
REPO = THIS_FILE.parents[1]
EXTERNAL_PATHS_MARKER = "<!-- paths: external -->"
# Files the programs write into their output folders (valid.py, demo.py, bench/demo_seeds.py,
# bench/gpu_check.py).
WRITTEN_BY_THE_PROGRAMS = {"results.md", "seeds.md", "gpu_check.md"}
NOT_SCANNED = {".git", "__pycache__", ".pytest_cache", "data", "logs", "results", "demo_output",
               "pretrained"}
CODE_SUFFIXES = {".py", ".sh", ".toml"}

URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s)>\]`'\"]+", re.I)
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
MD_NAME = re.compile(r"(?<![\w/.-])((?:\.\.?/)*[\w./-]*[A-Za-z0-9_]\.md)(?![\w-])")
SECTION_CITE = re.compile(
    r"(?<![\w/.-])([\w./-]*[A-Za-z0-9_]\.md)\)?"
    r"((?:\s*[,;]?\s*(?:and\s+)?§\s*\d+(?:\.\d+)*(?:\s*[-–]\s*§?\s*\d+(?:\.\d+)*)?)+)")
NUMBERED_HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s", re.M)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
PLACEHOLDER = set("<>$*?[]|")
# Suffixes that make a backticked word a file name (`utils/metrics.ConfusionMatrix` is not).
FILE_SUFFIX = re.compile(r"\.(py|md|sh|toml|json|jsonl|txt|png|jpg|svg|yaml|yml|csv|cfg|pth)$")


def scanned_files(root, suffixes, names=()):
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in NOT_SCANNED or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.resolve() == THIS_FILE:
            continue  # its docstring and self-test name dangling pages on purpose
        if path.is_file() and (path.suffix in suffixes or path.name in names):
            yield path


def pages(root):
    return list(scanned_files(root, {".md"}))


def code_files(root):
    return list(scanned_files(root, CODE_SUFFIXES, names={"Makefile"}))


def blank_urls(text):
    """URLs replaced by spaces (same offsets): `github.com/x/README.md` is no reference."""
    return URL.sub(lambda m: " " * len(m.group(0)), text)


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def resolve_md(root, citing, name):
    """The file a `*.md` mention means, or None."""
    name = name.removeprefix("./")
    for base in (citing.parent, root, root / "docs"):
        path = (base / name).resolve()
        if path.is_file() and path.is_relative_to(root.resolve()):
            return path
    return None


def check_links(root, page, text):
    for match in LINK.finditer(text):
        target = match.group(1)
        if URL.match(target) or target.startswith("mailto:"):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        where = (page, line_of(text, match.start()), target)
        if not dest.exists() or not dest.is_relative_to(root.resolve()):
            yield (*where, "no such file in the repository")
        elif anchor and dest.suffix == ".md":
            anchors = {slug(h) for h in HEADING.findall(dest.read_text(encoding="utf-8"))}
            if anchor.lower() not in anchors:
                yield (*where, f"no heading with anchor #{anchor} in {dest.name}")


def check_md_mentions(root, path, text):
    text = blank_urls(text)
    for match in MD_NAME.finditer(text):
        name = match.group(1)
        if Path(name).name in WRITTEN_BY_THE_PROGRAMS:
            continue
        if resolve_md(root, path, name) is None:
            yield path, line_of(text, match.start()), name, "no such page in the repository"


def check_section_cites(root, path, text):
    text = blank_urls(text)
    for match in SECTION_CITE.finditer(text):
        target = resolve_md(root, path, match.group(1))
        if target is None:
            continue  # reported by check_md_mentions
        have = set(NUMBERED_HEADING.findall(target.read_text(encoding="utf-8")))
        for number in re.findall(r"\d+(?:\.\d+)*", match.group(2)):
            if number not in have:
                yield (path, line_of(text, match.start()), f"{match.group(1)} §{number}",
                       f"{target.name} has no section {number}")


def expand_braces(token):
    """`scripts/{a,b}.sh` -> [`scripts/a.sh`, `scripts/b.sh`] (every group, one level)."""
    parts = re.split(r"\{([^{}]*)\}", token)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


def repo_path_candidates(text):
    """(offset, token) of path-like words in inline code and code blocks."""
    for match in INLINE_CODE.finditer(text):
        for word in match.group(1).split():
            yield match.start(), word
    for block in FENCE.finditer(text):
        for word in re.finditer(r"[^\s\"'=()]+", block.group(0)):
            yield block.start() + word.start(), word.group(0)


def looks_like_repo_path(word, top_level):
    word = word.removeprefix("./").rstrip(".,;)")
    first = word.split("/", 1)[0]
    if "/" not in word or first not in top_level or PLACEHOLDER & set(word):
        return None
    path = word if word.endswith("/") else word.split(":", 1)[0]
    if path.endswith("/") or first.startswith(".") or FILE_SUFFIX.search(path):
        return path
    return None


def check_repo_paths(root, page, text):
    if EXTERNAL_PATHS_MARKER in text:
        return
    top_level = {p.name for p in root.iterdir() if p.name not in NOT_SCANNED}
    for offset, word in repo_path_candidates(text):
        path = looks_like_repo_path(word, top_level)
        if path is None:
            continue
        for one in expand_braces(path):
            if not glob.glob(str(root / one.rstrip("/"))):
                yield page, line_of(text, offset), one, "no such file or folder in the repository"


def dangling_references(root):
    found = []
    for page in pages(root):
        text = page.read_text(encoding="utf-8")
        for check in (check_links, check_md_mentions, check_section_cites, check_repo_paths):
            found.extend(check(root, page, text))
    for path in code_files(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        found.extend(check_md_mentions(root, path, text))
        found.extend(check_section_cites(root, path, text))
    return [(str(p.relative_to(root)), line, ref, why) for p, line, ref, why in found]


def report(found):
    return "\n".join(f"{path}:{line}: {ref!r}: {why}" for path, line, ref, why in found)


def test_every_reference_in_the_repository_resolves():
    found = dangling_references(REPO)
    assert not found, "dangling references:\n" + report(found)


def test_the_pages_the_code_cites_are_in_docs():
    for name in ("METHOD", "DATASETS", "DECISIONS", "ARCHITECTURE", "TORCH12_SEMANTICS",
                 "ROBUSTNET_METHODS", "VFM_METHODS"):
        assert (REPO / "docs" / f"{name}.md").is_file(), name


def test_the_checker_finds_each_kind_of_dangling_reference(tmp_path):
    (tmp_path / "OUTSIDE.md").write_text("# a page beside the repository, e.g. /work/shared\n")
    tmp_path = tmp_path / "repo"
    (tmp_path / "docs").mkdir(parents=True)
    (tmp_path / "network").mkdir()
    (tmp_path / "network" / "resnet.py").write_text('"""Trunk (METHOD.md §1.1, §7; GONE.md)."""\n')
    (tmp_path / "docs" / "METHOD.md").write_text("# M\n\n## 1. Net\n\n### 1.1 Trunk\n")
    (tmp_path / "docs" / "EXT.md").write_text(f"{EXTERNAL_PATHS_MARKER}\n`network/mynn.py`\n")
    (tmp_path / "README.md").write_text(
        "[ok](docs/METHOD.md#11-trunk) [bad anchor](docs/METHOD.md#2-loss)\n"
        "[gone](docs/GONE.md) see MISSING.md and METHOD.md §1.1-1.2, https://x.org/A.md\n"
        "`network/resnet.py:ResNet` `network/mobilenet.py` `network/{resnet,shufflenet}.py`\n"
        "`results.md` `loss/train_loss` `docs/`\n"
        "```\npython network/resnet.py --out bench/results/x.json\n```\n"
        f"[outside](../OUTSIDE.md) {tmp_path.parent}/OUTSIDE.md\n")
    found = {(path, ref) for path, _, ref, _ in dangling_references(tmp_path)}
    assert found == {
        ("README.md", "docs/METHOD.md#2-loss"), ("README.md", "docs/GONE.md"),
        ("README.md", "MISSING.md"), ("README.md", "METHOD.md §1.2"),
        ("README.md", "network/mobilenet.py"), ("README.md", "network/shufflenet.py"),
        ("network/resnet.py", "METHOD.md §7"), ("network/resnet.py", "GONE.md"),
        ("README.md", "../OUTSIDE.md"), ("README.md", f"{tmp_path.parent}/OUTSIDE.md"),
    }, found
