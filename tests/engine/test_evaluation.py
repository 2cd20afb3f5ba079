import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from engine.evaluation import (ShardSampler, build_eval_loader, evaluate, predict_logits,
                              write_results)
from utils.metrics import metrics_from_confusion


class _OracleWithErrors(nn.Module):
    """Predicts the class stored in channel 0 of the input, as one-hot logits."""

    def forward(self, x):
        ids = x[:, 0].round().long().clamp(0, 3)
        return torch.nn.functional.one_hot(ids, 4).permute(0, 3, 1, 2).float()


class _Pairs(Dataset):
    def __init__(self, preds, labels):
        self.preds, self.labels = preds, labels

    def __len__(self):
        return len(self.preds)

    def __getitem__(self, i):
        image = torch.from_numpy(self.preds[i]).float()[None].repeat(3, 1, 1)
        return {"image": image, "label": torch.from_numpy(self.labels[i]).long(), "name": f"img{i}"}


def test_evaluate_equals_direct_confusion_computation(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=(5, 6, 8))
    labels[:, 0] = 255
    preds = np.where(rng.random(labels.shape) < 0.7, labels % 4, rng.integers(0, 4, labels.shape))
    loader = build_eval_loader(_Pairs(preds, labels), batch_size=2, num_workers=0)
    res = evaluate(_OracleWithErrors(), loader, torch.device("cpu"), num_classes=4)
    keep = labels != 255
    hist = np.zeros((4, 4), dtype=np.int64)
    np.add.at(hist, (labels[keep], preds[keep]), 1)
    expected = metrics_from_confusion(hist)
    assert res["miou"] == pytest.approx(expected["miou"])
    assert res["hist"] == hist.tolist()
    assert res["images"] == 5

    names = ["a", "b", "c", "d"]
    json_path, md_path = write_results({"toy": res}, tmp_path, names, "robustnet", "w.pth")
    data = json.loads(json_path.read_text())
    assert data["eval_protocol"] == "robustnet"
    assert data["datasets"]["toy"]["miou"] == pytest.approx(expected["miou"])
    assert f"{100 * expected['miou']:.2f}" in md_path.read_text()


def test_max_images_and_shards_cover_every_image_once():
    shards = [list(ShardSampler(7, r, 3)) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(7))
    loader = build_eval_loader(_Pairs(np.zeros((9, 2, 2)), np.zeros((9, 2, 2))), max_images=4,
                               num_workers=0)
    assert len(loader.sampler) == 4


def test_sliding_window_equals_whole_image_for_a_local_model():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 5, 1).eval()  # purely local: windows must reproduce the whole image
    images = torch.randn(2, 3, 37, 53)
    whole = predict_logits(model, images)
    windows = predict_logits(model, images, sliding_window=True, crop_size=16, stride=10)
    torch.testing.assert_close(windows, whole)
    small = predict_logits(model, images[:, :, :9, :11], sliding_window=True, crop_size=16)
    assert small.shape == (2, 5, 9, 11)


def test_load_eval_model_takes_plain_values_and_raises_instead_of_exiting(tmp_path):
    import network
    from engine.evaluation import SnapshotMismatchError, load_eval_model

    arch, wt_layer = "network.deepv3.DeepR18V3PlusD", [0, 0, 1, 1, 1, 0, 0]
    torch.manual_seed(0)
    trained = network.get_net(arch, 19, wt_layer, pretrained=False)
    path = tmp_path / "w.pth"
    torch.save({"state_dict": trained.state_dict(), "norm_semantics": "torch1.2"}, path)
    model, mode, recorded = load_eval_model(path, arch, wt_layer, device=torch.device("cpu"))
    assert (mode, recorded) == ("torch1.2", "torch1.2") and not model.training
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value)
    with pytest.raises(SnapshotMismatchError, match=f"--snapshot {path} does not fit --arch"):
        load_eval_model(path, "network.deepv3.DeepMobileNetV3PlusD", wt_layer,
                        device=torch.device("cpu"))
    with pytest.raises(FileNotFoundError):
        load_eval_model(tmp_path / "missing.pth", arch, wt_layer, device=torch.device("cpu"))
