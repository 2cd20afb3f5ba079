"""Evaluation under ``--eval_protocol rein``: mmseg's unpadded sliding windows and scores
resized to the label's resolution (docs/VFM_METHODS.md §4.1)."""

import torch
from torch import nn

from engine.evaluation import evaluate, inference_description, predict_logits
from engine.protocols import inference_settings


class Recorder(nn.Module):
    """Eval model whose class-c score is the x coordinate (per window) times c + 1; it
    records the window shapes it is given."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def forward(self, images):
        self.shapes.append(tuple(images.shape[-2:]))
        xs = torch.arange(images.shape[-1], dtype=torch.float32).expand(images.shape[-2], -1)
        return torch.stack([xs * (c + 1) for c in range(3)])[None].expand(images.shape[0],
                                                                          -1, -1, -1)


def test_reins_windows_are_never_padded_and_average_overlaps():
    settings = inference_settings("rein", sliding_window=False, crop_size=64, stride=8)
    assert settings == {"sliding_window": True, "crop_size": 512, "stride": 341,
                        "pad_windows": False}
    model = Recorder()
    images = torch.zeros(1, 3, 100, 700)
    scores = predict_logits(model, images, **settings)
    # Windows 100 x 512 (not padded to 512) at x = 0 and x = 188 (flush with the border).
    assert model.shapes == [(100, 512), (100, 512)]
    column = scores[0, 0, 0]
    assert column[100] == 100 and column[600] == 600 - 188
    assert column[300] == (300 + 300 - 188) / 2  # covered by both windows: their mean
    assert inference_description(**settings)["name"] == "sliding-window(512,341,unpadded)"
    padded = Recorder()
    predict_logits(padded, images, True, 512, 341)
    assert padded.shapes[0] == (512, 512)  # the other protocols pad the window


def test_scores_are_resized_to_the_label_before_the_argmax():
    class Halves(nn.Module):  # class 0 on the left half of any input, class 1 on the right
        def forward(self, images):
            width = images.shape[-1]
            left = torch.arange(width) < width // 2
            scores = torch.stack([left.float(), (~left).float()]).expand(images.shape[-2], -1,
                                                                        -1).permute(1, 0, 2)
            return scores[None].expand(images.shape[0], -1, -1, -1)

    labels = torch.zeros(1, 96, 160, dtype=torch.long)  # the image at 64 x 80, labels at x2
    labels[..., 80:] = 1
    loader = [{"image": torch.zeros(1, 3, 64, 80), "label": labels, "name": ["a"]}]

    class Loader(list):
        sampler, dataset = [0], None

    result = evaluate(Halves(), Loader(loader), torch.device("cpu"), num_classes=2)
    assert result["miou"] == 1.0 and sum(map(sum, result["hist"])) == 96 * 160
