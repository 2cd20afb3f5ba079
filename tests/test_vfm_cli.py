"""The command line of the network.vfm segmenters: flags that must fit a ViT arch fail at
parse time naming the flag, flags a Rein run does not read warn, --pretrained is required."""

import pytest

import cli
import network
import train
from network.input_size import check_train_crop

VFM = ["--arch", "network.vfm.ReinDinov2SMask2Former"]


@pytest.mark.parametrize("argv, message", [
    (VFM + ["--wt_layer", "0", "0", "1", "1", "1", "0", "0"], "--wt_layer 0 0 1 1 1 0 0"),
    (VFM + ["--norm_semantics", "torch1.2"], "--norm_semantics torch1.2"),
    # No BatchNorm to replace (DINOv2 / Mask2Former normalise with their own LayerNorm /
    # GroupNorm): the norm-layer flags are refused rather than ignored.
    (VFM + ["--norm_layer", "instancenorm_affine"], "--norm_layer instancenorm_affine: "),
    (VFM + ["--head_norm_layer", "syncbatchnorm"], "--head_norm_layer syncbatchnorm: "),
    (VFM + ["--wt_layer", "0", "0", "instancenorm", "0", "0", "0", "0"],
     "--wt_layer 0 0 instancenorm 0 0 0 0"),
    (VFM + ["--arch_options", "depth=2", "bogus=1"], "--arch_options bogus"),
    (VFM + ["--arch_options", "depth"], "expected KEY=VALUE"),
    (["--arch_options", "depth=2"], "takes none"),
    (["--vit_in_blocks", "1"], "--vit_in_blocks: only network.vfm"),
    (["--arch", "network.vfm.ReinDinov2XMask2Former"], "network.vfm.ReinDinov2LMask2Former"),
    (VFM + ["--train_preset", "rein", "--class_uniform_pct", "0.5"], "no class-centred crops"),
    (VFM + ["--train_preset", "rein", "--photometric", "device"],
     "--photometric device: the rein preset makes its photometric distortion"),
])
def test_vit_settings_that_do_not_fit_fail_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.parse_args("train", argv)
    assert excinfo.value.code == 2 and message in capsys.readouterr().err


def test_get_net_refuses_a_norm_layer_for_a_vfm_arch():
    with pytest.raises(ValueError, match="--norm_layer instancenorm: .* no BatchNorm"):
        network.get_net(VFM[1], pretrained=False, norm_layer="instancenorm")


def test_flags_a_rein_run_does_not_read_warn():
    with pytest.warns(UserWarning) as caught:
        cli.parse_args("train", VFM + ["--train_preset", "rein", "--gblur", "--optimizer",
                                       "adamw", "--momentum", "0.5"])
    messages = " ".join(str(w.message) for w in caught)
    assert "--gblur has no effect" in messages and "--momentum has no effect" in messages


def test_the_dinov2_file_is_required_and_crops_fit_the_patch(capsys):
    args = cli.parse_args("train", VFM + ["--arch_options", "depth=2", "img_size=64"])
    assert cli.model_kwargs(args, in_features=True) == {
        "depth": 2, "img_size": 64, "in_blocks": (0, 1), "embeddings": False}
    assert network.prediction_kind(args.arch) == network.MASK_PREDICTIONS
    with pytest.raises(SystemExit, match="no DINOv2 weights .* --pretrained none"):
        train.build_model(args, _Dist(), _Log(), _Criterion())
    with pytest.raises(ValueError, match="multiples of 16"):
        check_train_crop(args.arch, 19, args.wt_layer, 50)
    check_train_crop(args.arch, 19, args.wt_layer, 56, {"patch_size": 14})


class _Dist:
    distributed, device = False, None


class _Log:
    def info(self, message):
        pass


class _Criterion:
    needs_in_features = needs_embeddings = False
