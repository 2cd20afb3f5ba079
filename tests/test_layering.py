"""The import rule of docs/ARCHITECTURE.md, checked on the source: imports point downward only
(entry points -> cli -> engine -> network / loss / datasets -> transforms -> utils / config),
and no library module takes the argparse namespace."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Package (or top-level module) -> layer; a module may import only strictly lower layers
# (and its own package). config and utils share the bottom layer.
LAYER = {"config": 0, "utils": 0, "transforms": 1, "network": 2, "loss": 2, "datasets": 2,
         "engine": 3, "cli": 4, "train": 5, "valid": 5, "infer": 5, "demo": 5}
BOTTOM = {"config", "utils"}
LIBRARY_LAYERS = 2  # network, loss, datasets, transforms, utils: no `args` parameter
# demo.py drives training through train.main (an entry point calling an entry point).
ALLOWED = {("demo", "train")}
# Registries: the call that adds an entry -> the one package whose modules may call it (the
# registry discovers its entries there, and anything above would import upward to reach it).
REGISTRATIONS = {"register_term": "loss", "NormLayer": "network"}


def source_files():
    for path in sorted(REPO.rglob("*.py")):
        rel = path.relative_to(REPO)
        if rel.parts[0].removesuffix(".py") in LAYER:
            yield rel


def imported_modules(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield node.lineno, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, [node.module]


def upward_imports(rel, root=REPO):
    top = rel.parts[0].removesuffix(".py")
    tree = ast.parse((root / rel).read_text(encoding="utf-8"))
    found = []
    for lineno, modules in imported_modules(tree):
        for module in modules:
            target = module.split(".")[0]
            if target not in LAYER or target == top or (top, target) in ALLOWED:
                continue
            if {top, target} <= BOTTOM:
                continue
            if LAYER[target] >= LAYER[top]:
                found.append(f"{rel}:{lineno}: {top} (layer {LAYER[top]}) imports {module} "
                             f"(layer {LAYER[target]})")
    return found


def args_parameters(rel):
    tree = ast.parse((REPO / rel).read_text(encoding="utf-8"))
    return [f"{rel}:{node.lineno}: def {node.name}(..., args, ...)"
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and "args" in [a.arg for a in node.args.args + node.args.kwonlyargs]]


def registrations_outside_their_package(rel, root=REPO):
    """``rel:line: register_x(...) outside <package>/`` for each misplaced registration."""
    top = rel.parts[0].removesuffix(".py")
    tree = ast.parse((root / rel).read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name in REGISTRATIONS and REGISTRATIONS[name] != top:
            found.append(f"{rel}:{node.lineno}: {name}(...) outside {REGISTRATIONS[name]}/")
    return found


def test_the_layer_table_covers_every_package():
    packages = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}
    assert packages - {"tests", "bench", "tools"} <= set(LAYER), \
        f"a new package needs a layer in tests/test_layering.py: {sorted(packages - set(LAYER))}"


def test_no_module_imports_upward():
    problems = [line for rel in source_files() for line in upward_imports(rel)]
    assert not problems, "upward imports:\n" + "\n".join(problems)


def test_library_code_takes_no_argparse_namespace():
    library = [rel for rel in source_files()
               if LAYER[rel.parts[0].removesuffix(".py")] <= LIBRARY_LAYERS]
    assert library, "no library files found"
    problems = [line for rel in library for line in args_parameters(rel)]
    assert not problems, "library functions taking `args`:\n" + "\n".join(problems)


@pytest.mark.parametrize("snippet, expected", [
    ("import engine.trainer\n", 1), ("from cli import parse_args\n", 1),
    ("from utils.labels import NUM_CLASSES\n", 0), ("import torch\n", 0)])
def test_the_check_itself_catches_an_upward_import(tmp_path, snippet, expected):
    """A datasets module importing engine/cli is reported; a downward one is not."""
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "bad.py").write_text(snippet)
    assert len(upward_imports(Path("datasets/bad.py"), root=tmp_path)) == expected


def test_registries_stay_in_their_layers():
    problems = [line for rel in source_files() for line in registrations_outside_their_package(rel)]
    assert not problems, "registrations outside their package:\n" + "\n".join(problems)


def test_the_check_itself_catches_a_misplaced_registration(tmp_path):
    for package in ("engine", "loss"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "term.py").write_text("from loss import register_term\n"
                                                    "register_term(TERM)\n")
    assert len(registrations_outside_their_package(Path("engine/term.py"), tmp_path)) == 1
    assert registrations_outside_their_package(Path("loss/term.py"), tmp_path) == []


# The norm-layer registry (issue 22): network/norms.py and the layer files it discovers in
# network/norm_layers/ sit below every trunk and head, and the --wt_layer code table sits at
# the bottom (loss/ reads it and must not import network/).
REGISTRY_IMPORTS = {
    "network/norms.py": {"network.norm_layers"},
    "network/norm_layers": {"network.norm_layers", "utils"},
    "utils/wt_layer.py": set(),
}
# Norm classes whose special treatment must come from a declared property of
# network/norms.py, not from a class test.
NORM_CLASS_NAMES = {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "_BatchNorm",
                    "_NormBase", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
                    "_InstanceNorm", "GroupNorm", "LayerNorm", "InstanceWhitening",
                    "SwitchWhiten2d"}


def framework_imports(rel):
    """Modules of the framework (a LAYER package) imported by ``rel``."""
    tree = ast.parse((REPO / rel).read_text(encoding="utf-8"))
    return {module for _, modules in imported_modules(tree) for module in modules
            if module.split(".")[0] in LAYER}


@pytest.mark.parametrize("home", sorted(REGISTRY_IMPORTS))
def test_the_norm_registry_imports_nothing_above_it(home):
    files = sorted((REPO / home).glob("*.py")) if (REPO / home).is_dir() else [REPO / home]
    assert files, f"{home} is missing"
    allowed = REGISTRY_IMPORTS[home]
    problems = [f"{path.relative_to(REPO)} imports {module}"
                for path in files for module in framework_imports(path.relative_to(REPO))
                if not any(module == a or module.startswith(a + ".") for a in allowed)]
    assert not problems, "\n".join(problems)


def _names_in(node):
    return {n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", None)
            for n in ast.walk(node)}


def norm_class_tests(rel):
    """``isinstance(x, <norm class>)`` / ``issubclass`` calls naming a norm class in ``rel``,
    directly or through a module-level name bound to one (``SYNCED = (nn.SyncBatchNorm,)``)."""
    tree = ast.parse((REPO / rel).read_text(encoding="utf-8"))
    aliases = {target.id for node in tree.body if isinstance(node, ast.Assign)
               and _names_in(node.value) & NORM_CLASS_NAMES
               for target in node.targets if isinstance(target, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("isinstance", "issubclass") and len(node.args) == 2):
            if _names_in(node.args[1]) & (NORM_CLASS_NAMES | aliases):
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    return found


# Class tests that are a fact of another framework rather than a norm layer's behaviour.
CLASS_TESTS_ALLOWED = {
    "network/vfm.py": "mmengine's norm_decay_mult=0 for the VFM's own LayerNorm / GroupNorm "
                      "(VFM_METHODS.md 3.5); no registry layer is built there",
}


def test_norm_layers_are_treated_by_declared_properties_not_by_class():
    problems = [line for rel in source_files() if str(rel) not in CLASS_TESTS_ALLOWED
                for line in norm_class_tests(rel)]
    assert not problems, ("declare the behaviour in network/norms.py (NormLayer) instead of "
                          "testing the class:\n" + "\n".join(problems))


def test_the_class_test_check_itself_catches_one(tmp_path, monkeypatch):
    (tmp_path / "network").mkdir()
    (tmp_path / "network" / "bad.py").write_text(
        "from torch import nn\nok = isinstance(m, nn.Conv2d)\n"
        "bad = isinstance(m, (nn.Conv2d, nn.InstanceNorm2d))\n"
        "SYNCED = (nn.SyncBatchNorm,)\nalso_bad = isinstance(m, SYNCED)\n")
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    assert norm_class_tests(Path("network/bad.py")) == [
        "network/bad.py:3: isinstance(m, (nn.Conv2d, nn.InstanceNorm2d))",
        "network/bad.py:5: isinstance(m, SYNCED)"]
