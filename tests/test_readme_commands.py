"""Every ``python train.py / valid.py / infer.py`` example of the README parses as written, and
the evaluation and inference examples run as written on generated data."""

import re
import shlex
import warnings

import pytest
import torch
from PIL import Image

import cli
import infer
import valid
from config import REPO_ROOT

SCRIPTS = ("train", "valid", "infer")


def readme_commands():
    """``(script, argv)`` of each README bash-block command of an entry point, continuation
    lines joined; placeholders (``...``) skipped."""
    text = (REPO_ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            words = shlex.split(command.split(" #")[0])
            if len(words) > 1 and words[0] == "python" and \
                    words[1].removesuffix(".py") in SCRIPTS and "..." not in words:
                commands.append((words[1].removesuffix(".py"), words[2:]))
    return commands


def test_the_readme_has_the_examples():
    found = {script for script, _ in readme_commands()}
    assert found == set(SCRIPTS), found


@pytest.mark.parametrize("script, argv", readme_commands())
def test_each_example_parses_without_a_warning(script, argv):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cli.parse_args(script, argv)


def _save_model(path):
    """A random light model that records itself, as train.py saves them."""
    import network
    from engine.model_spec import model_entry

    arch, wt_layer = "network.deepv3.DeepShuffleNetV3PlusD", [0, 0, 1, 1, 1, 0, 0]
    torch.manual_seed(0)
    model = network.get_net(arch, 19, wt_layer, pretrained=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "norm_semantics": "modern",
                "model": model_entry(arch, wt_layer, "modern")}, path)


def test_the_evaluation_and_inference_examples_run_as_written(data_env, tmp_path,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    examples = [(script, argv) for script, argv in readme_commands()
                if script != "train" and "--arch" not in argv]  # recorded models only
    assert len(examples) == 3, examples
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (80, 60), (90, 120, 40)).save(photos / f"{name}.jpg")
    for script, argv in examples:
        _save_model(tmp_path / argv[argv.index("--snapshot") + 1])
        main = valid.main if script == "valid" else infer.main
        assert main(argv), (script, argv)
    assert (tmp_path / "logs" / "ckpt" / "default" / "default" / "results.json").is_file()
    assert sorted(p.name for p in (tmp_path / "out" / "default" / "images").iterdir()) == [
        f"{n}_{kind}.png" for n in "ab" for kind in ("color", "overlay", "trainid")]
    assert len(list((tmp_path / "out" / "blindnet" / "bdd100k").iterdir())) == 10
