"""How far the device photometric ops are from the loader path's PIL ops (DECISIONS.md D66).

    python bench/photometric_parity.py                   # 7 photos, 20 draws per op and photo
    python bench/photometric_parity.py --draws 50 --out logs/photometric_parity.json

On scikit-image's sample photographs (``tests/generated_data.py``, no download), per op:
the loader path's op on the PIL image (what ``v2.ColorJitter`` / ``gaussian_blur`` run in the
workers) against ``transforms/device_photometric.py`` on the same uint8 tensor, with factors
drawn uniformly from the strong view's ranges (brightness, contrast, saturation 0.2-1.8, hue
-0.3-0.3, blur sigma 0.15-1.30); and the same against torchvision's own tensor kernels (the
semantics the device ops follow). Then whole views: view 1 (``--color_aug 0.5 --gblur``) and
view 2 of the loader path against the device path with the same seeded parameters, on the
whole photos and on random 48x48 crops of them (a small image's mean difference varies more;
the test of the device path compares 48x48 training crops).

Reports the mean absolute difference in grey levels, its largest value over the draws,
the largest single-pixel difference, and the share of pixels that differ at all.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report  # noqa: E402
from tests.generated_data import sample_photos  # noqa: E402
from transforms import device_photometric as dev  # noqa: E402
from transforms.photometric import (gaussian_blur, jittered_view_transform,  # noqa: E402
                                    original_view_transform)
from transforms.photometric_params import ItemParams  # noqa: E402

OPS = {  # name: (PIL op, device op, torchvision tensor op, factor range)
    "brightness": (TF.adjust_brightness, dev.adjust_brightness, TF.adjust_brightness, (0.2, 1.8)),
    "contrast": (TF.adjust_contrast, dev.adjust_contrast, TF.adjust_contrast, (0.2, 1.8)),
    "saturation": (TF.adjust_saturation, dev.adjust_saturation, TF.adjust_saturation,
                   (0.2, 1.8)),
    "hue": (TF.adjust_hue, dev.adjust_hue, TF.adjust_hue, (-0.3, 0.3)),
    "blur": (gaussian_blur, None, None, (0.15, 1.30)),
}


def difference(a, b):
    """(mean |a - b|, max |a - b|, share of differing values) of two uint8 arrays."""
    diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
    return float(diff.mean()), int(diff.max()), float((diff > 0).mean())


def device_op(name, tensor, factor):
    """The device op on one (3, H, W) uint8 image -> (H, W, 3) uint8."""
    levels = tensor[None].float()
    value = torch.tensor([factor], dtype=torch.float64)
    out = dev.gaussian_blur(levels, value) if name == "blur" else OPS[name][1](levels, value)
    return out[0].to(torch.uint8).permute(1, 2, 0).numpy()


def summarise(rows):
    means, maxima, shares = zip(*rows)
    return {"mean_abs": float(np.mean(means)), "worst_mean_abs": float(max(means)),
            "max_abs": int(max(maxima)), "differing_share": float(np.mean(shares))}


def per_op(photos, draws, rng):
    results = {}
    for name, (pil_op, _, tensor_op, (low, high)) in OPS.items():
        vs_pil, vs_tensor = [], []
        for photo in photos.values():
            image, tensor = Image.fromarray(photo), torch.from_numpy(photo).permute(2, 0, 1)
            for _ in range(draws):
                factor = float(rng.uniform(low, high))
                ours = device_op(name, tensor, factor)
                vs_pil.append(difference(pil_op(image, factor), ours))
                if tensor_op is not None:
                    reference = tensor_op(tensor, factor).permute(1, 2, 0).numpy()
                    vs_tensor.append(difference(reference, ours))
        results[name] = {"vs_pil": summarise(vs_pil)}
        if vs_tensor:
            results[name]["vs_torchvision_tensor"] = summarise(vs_tensor)
    return results


def whole_views(images, seeds):
    """Loader view transforms vs the device path with the same seeded parameters, one seed
    per (image, draw); ``images``: (H, W, 3) uint8 arrays."""
    loader_views = (original_view_transform(color_aug=0.5, gblur=True), jittered_view_transform())
    params = ItemParams(color_aug=0.5, gblur=True, two_view=True)
    rows = {"view1": [], "view2": []}
    for image_array, seed in zip(images, seeds):
        image = Image.fromarray(image_array)
        tensor = torch.from_numpy(image_array).permute(2, 0, 1)
        torch.manual_seed(seed)
        loader = [view(image) for view in loader_views]
        torch.manual_seed(seed)
        row = params()
        for view, key in enumerate(rows):
            device = dev.apply_view(tensor[None], row[view][None])[0]
            rows[key].append(difference(loader[view].numpy(), device.numpy()))
    return {key: summarise(value) for key, value in rows.items()}


def random_crops(photos, per_photo, side, rng):
    """``per_photo`` random ``side`` x ``side`` crops of every photo (small crops: a
    per-image mean varies more, as in the test of the device path)."""
    crops = []
    for photo in photos.values():
        for _ in range(per_photo):
            y = int(rng.integers(0, photo.shape[0] - side))
            x = int(rng.integers(0, photo.shape[1] - side))
            crops.append(np.ascontiguousarray(photo[y:y + side, x:x + side]))
    return crops


def markdown(result):
    lines = ["| op | vs PIL (loader path): mean abs, worst mean, max abs, differing | "
             "vs torchvision tensor: mean abs, max abs, differing |", "|---|---|---|"]
    views = {f"{key} ({kind})": row for kind, rows in result["views"].items()
             for key, row in rows.items()}
    for name, row in {**result["ops"], **views}.items():
        pil = row.get("vs_pil", row)
        cells = [f"{pil['mean_abs']:.3f}, {pil['worst_mean_abs']:.3f}, {pil['max_abs']}, "
                 f"{100 * pil['differing_share']:.1f}%"]
        tensor = row.get("vs_torchvision_tensor")
        cells.append(f"{tensor['mean_abs']:.4f}, {tensor['max_abs']}, "
                     f"{100 * tensor['differing_share']:.2f}%" if tensor else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=20, help="factor draws per op and photo")
    parser.add_argument("--crops", type=int, default=40,
                        help="random 48x48 crops per photo for the whole-view comparison")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    photos = sample_photos()
    rng = np.random.default_rng(0)
    whole = [photo for photo in photos.values() for _ in range(args.draws)]
    crops = random_crops(photos, args.crops, 48, rng)
    result = {"photos": {name: list(photo.shape) for name, photo in photos.items()},
              "draws": args.draws, "crops_per_photo": args.crops,
              "ops": per_op(photos, args.draws, rng),
              "views": {"whole photos": whole_views(whole, range(len(whole))),
                        "48x48 crops": whole_views(crops, range(len(crops)))}}
    report(result, markdown(result), args.out)
    return result


if __name__ == "__main__":
    main()
