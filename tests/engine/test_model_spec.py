"""engine.model_spec: the model a checkpoint records, flags resolved against it, the guess."""

import pytest
import torch

import network
from engine.model_spec import (ModelFlagError, likely_model, model_entry, model_record,
                               resolve_model)

R18 = "network.deepv3.DeepR18V3PlusD"
NONE = {"arch": None, "wt_layer": None, "num_classes": None, "norm_semantics": None,
        "arch_options": None, "norm_layer": None, "head_norm_layer": None}
BN = {"norm_layer": "batchnorm", "head_norm_layer": "batchnorm"}


def test_the_record_of_ours_of_older_ones_and_of_official_files():
    ours = {"model": model_entry("DeepR18V3PlusD", (0, 0, 1, 1, 1, 0, 0), "torch1.2")}
    assert model_record(ours) == {"arch": R18, "wt_layer": [0, 0, 1, 1, 1, 0, 0],
                                  "num_classes": 19, "norm_semantics": "torch1.2",
                                  "arch_options": {}, **BN}
    older = {"args": {"arch": R18, "wt_layer": [0] * 7, "norm_semantics": "modern"}}
    assert model_record(older)["wt_layer"] == [0] * 7
    # Records from before the norm-layer fields were trained with the default, BatchNorm.
    assert {k: model_record(older)[k] for k in BN} == BN
    without = {"model": {k: v for k, v in ours["model"].items() if k not in BN}}
    assert {k: model_record(without)[k] for k in BN} == BN
    named = {"model": model_entry(R18, (0, "0", "instancenorm", 4, 0, 0, 0), "modern",
                                  norm_layer="instancenorm_affine",
                                  head_norm_layer="syncbatchnorm")}
    assert model_record(named)["wt_layer"] == [0, 0, "instancenorm", 4, 0, 0, 0]
    assert model_record(named)["norm_layer"] == "instancenorm_affine"
    assert model_record(named)["head_norm_layer"] == "syncbatchnorm"
    assert model_record({"state_dict": {}, "command": "train.py --arch x"}) is None
    assert model_record({"a": torch.zeros(1)}) is None


def test_flags_left_out_take_the_record_and_agreeing_flags_pass():
    record = {"arch": R18, "wt_layer": [0, 0, 1, 1, 1, 0, 0], "num_classes": 19,
              "norm_semantics": "modern", "norm_layer": "instancenorm_affine",
              "head_norm_layer": "batchnorm"}
    settings, taken = resolve_model(NONE, record, "c.pth")
    assert settings == {**record, "arch_options": None}
    assert taken == ["arch", "wt_layer", "num_classes", "norm_semantics", "norm_layer",
                     "head_norm_layer"]
    agreeing = {**NONE, "arch": "DeepR18V3PlusD", "wt_layer": [0, 0, 1, 1, 1, 0, 0],
                "norm_layer": "instancenorm_affine"}
    assert resolve_model(agreeing, record, "c.pth")[1] == ["num_classes", "norm_semantics",
                                                           "head_norm_layer"]


def test_contradictions_are_refused_unless_partial_or_free():
    record = {"arch": R18, "wt_layer": [0, 0, 1, 1, 1, 0, 0], "num_classes": 19,
              "norm_semantics": "modern", **BN}
    torch12 = {**NONE, "norm_semantics": "torch1.2"}
    with pytest.raises(ModelFlagError, match="--norm_semantics torch1.2 given, checkpoint "
                                             "trained with --norm_semantics modern"):
        resolve_model(torch12, record, "c.pth")
    assert resolve_model(torch12, record, "c.pth", free=("norm_semantics",))[0][
        "norm_semantics"] == "torch1.2"
    for field in BN:
        with pytest.raises(ModelFlagError, match=f"--{field} instancenorm_affine given, "
                                                 f"checkpoint trained with --{field} batchnorm"):
            resolve_model({**NONE, field: "instancenorm_affine"}, record, "c.pth")
        assert resolve_model({**NONE, field: "instancenorm_affine"}, record, "c.pth",
                             partial=True)[0][field] == "instancenorm_affine"
    wrong = {**NONE, "wt_layer": [0] * 7}
    assert resolve_model(wrong, record, "c.pth", partial=True)[0]["wt_layer"] == [0] * 7
    with pytest.raises(ModelFlagError, match="trained for 7 classes"):
        resolve_model(NONE, {**record, "num_classes": 7}, "c.pth")
    with pytest.raises(ModelFlagError, match="pass --arch and --wt_layer"):
        resolve_model(NONE, None, "official.pth")
    with pytest.raises(ModelFlagError, match="pass --wt_layer$"):
        resolve_model({**NONE, "arch": R18}, None, "official.pth")


@pytest.mark.parametrize("arch, wt_layer", [("DeepR50V3PlusD_OS8", [0, 0, 4, 4, 4, 0, 0]),
                                            ("DeepMobileNetV3PlusD", [0] * 7)])
def test_the_guess_names_the_factory_and_layout_of_a_state_dict(arch, wt_layer):
    with torch.device("meta"):
        weights = network.get_net(arch, 19, wt_layer, pretrained=False).state_dict()
    guessed, layout, exact = likely_model(weights)
    assert guessed == "network.deepv3." + arch.removesuffix("_OS8") and exact
    assert layout == wt_layer or set(layout) <= {0, 1}  # codes 1-3 hold no tensors
    assert likely_model({"unrelated.weight": torch.zeros(3)}) is None


def test_a_vfm_record_keeps_its_name_and_its_arch_options():
    vfm = "network.vfm.ReinDinov2LMask2Former"
    entry = model_entry(vfm, [0] * 7, "modern", arch_options={"depth": 2, "dim": 64})
    record = model_record({"model": entry})
    assert record["arch"] == vfm and record["arch_options"] == {"depth": 2, "dim": 64}
    settings, taken = resolve_model(NONE, record, "c.pth")
    assert settings["arch_options"] == {"depth": 2, "dim": 64} and "arch_options" in taken
    other = {**NONE, "arch_options": {"depth": 4, "dim": 64}}
    with pytest.raises(ModelFlagError, match="--arch_options depth=4 dim=64 given, checkpoint "
                                             "trained with --arch_options depth=2 dim=64"):
        resolve_model(other, record, "c.pth")
