"""Convert a released DINOv2 file to the patch-16 / 512 weights Rein trains from.

    python tools/convert_dinov2.py dinov2_vitl14_pretrain.pth dinov2_converted.pth
    python tools/convert_dinov2.py dinov2_vitl14_pretrain.pth out.pth --img_size 1024

What Rein's ``tools/convert_models/convert_dinov2_large_512x512.py`` does (docs/VFM.md,
docs/VFM_METHODS.md §3.6): the 14x14 patch kernel is resized bicubically to 16x16 (values
not rescaled), the 37x37 position grid to ``img_size / 16`` (32x32 for 512: ``pos_embed``
``[1, 1025, C]``), every other tensor is copied. Chunked (FSDP) block names are flattened.
The models also convert on load (``network.dinov2_weights.fit_dinov2_state``), so this file
is optional; it saves the conversion at every start and gives Rein's released heads the
exact backbone they were trained on.
"""

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from network.dinov2_weights import convert_dinov2_state, read_dinov2_file  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="released DINOv2 file (dinov2_vit*14*_pretrain.pth)")
    parser.add_argument("output", help="where to write the converted state dict")
    parser.add_argument("--patch_size", type=int, default=16)
    parser.add_argument("--img_size", type=int, default=512,
                        help="training crop the position grid is made for (Rein: 512)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.patch_size <= 0 or args.img_size % args.patch_size:
            raise ValueError(f"--img_size {args.img_size} must be a positive multiple of "
                             f"--patch_size {args.patch_size}")
        state = convert_dinov2_state(read_dinov2_file(args.source), args.patch_size,
                                     args.img_size)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"convert_dinov2.py: error: {error}", file=sys.stderr)
        return 2
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, output)
    print(f"{args.source} -> {output}: patch_embed {tuple(state['patch_embed.proj.weight'].shape)}"
          f", pos_embed {tuple(state['pos_embed'].shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
