"""GTAV (DATASETS.md §1): palette PNG labels decoded by colour, sub-folder level mandatory.

Image/label size mismatches (DECISIONS.md D4): the reference silently swaps such a sample
for an unrelated one. We compare every pair's header sizes once (cached under the cache
directory, keyed by the file list), warn with the list, and then either leave the pairs out
(``gtav_mismatch="drop"``, default) or keep them with the label resized to the image by
nearest neighbour (``gtav_mismatch="resize"``).
"""

import warnings

import numpy as np

from datasets.base import SegmentationDataset
from datasets.cache import cache_path, files_fingerprint, load_cache, parallel_map, save_cache
from datasets.label_codes import apply_lut, decode_colour_label, palette_to_trainid_lut
from datasets.readers import DatasetReadError, read_image_size, read_pil_label
from utils.logging import printable


def decode_gtav_label(path):
    """GTAV label PNG -> (H, W) uint8 train ids, by colour (DATASETS.md §1.2).

    Palette PNGs (the real GTAV format) are decoded by looking up the palette's colours once
    and then indexing with the palette indices; RGB(A) PNGs by packing each pixel's colour.
    Both give what the reference's RGB comparison gives.
    """
    label = read_pil_label(path)
    if label.mode == "P":
        lut = palette_to_trainid_lut(label.getpalette() or [])
        return apply_lut(np.asarray(label), lut)
    if label.mode in ("RGB", "RGBA"):
        return decode_colour_label(np.asarray(label))
    raise DatasetReadError(f"GTAV label {path} has PIL mode {label.mode!r}; expected a "
                           "palette ('P') or RGB colour PNG")


def pair_sizes(sample_paths):
    """Pool worker: (image path, label path) -> ((W, H) of image, (W, H) of label)."""
    image_path, label_path = sample_paths
    return read_image_size(image_path), read_image_size(label_path, "label")


class GTAV(SegmentationDataset):
    """GTAV: ``images/{train,valid}/<folder>/<id>.png`` + same names under ``labels/``."""

    name = "gtav"
    aliases = ()
    env_var = "BLINDNET_GTAV_DIR"
    root_flag = "--gtav_dir"
    split_folders = {"train": ("train",), "val": ("valid",), "trainval": ("train", "valid")}
    layout = (
        "  <GTAV_DIR>/\n"
        "    images/train/<folder>/00001.png     (a sub-folder level is required)\n"
        "    images/valid/<folder>/00022.png     (split 'val' reads the 'valid' folder)\n"
        "    labels/train/<folder>/00001.png     (palette PNG, Cityscapes colours)\n"
        "    labels/valid/<folder>/00022.png")
    label_decoder = staticmethod(decode_gtav_label)

    def list_samples(self, folder):
        image_split = self.require_dir(self.root / "images" / folder, "image split folder")
        label_split = self.require_dir(self.root / "labels" / folder, "label split folder")
        if not any(p.is_dir() for p in image_split.iterdir()):
            raise self.layout_error(f"no sub-folders in {image_split} (GTAV images must be in "
                                    f"{image_split}/<folder>/<id>.png)")
        return [(image, image.stem, [label_split / image.parent.name / image.name])
                for image in self.list_files(image_split, ".png", pattern="*")]

    def check_samples(self, samples):
        mismatched = self._size_mismatches(samples)
        if not mismatched:
            return samples
        action = ("left out" if self.options["gtav_mismatch"] == "drop"
                  else "kept with the label resized (nearest) to the image size")
        listing = ", ".join(f"{label} (image {img[0]}x{img[1]}, label {lab[0]}x{lab[1]})"
                            for label, (img, lab) in sorted(mismatched.items()))
        warnings.warn(printable(f"GTAV {self.split}: {len(mismatched)} image/label pair(s) "
                                f"differ in size and are {action} (--gtav_mismatch): {listing}"),
                      RuntimeWarning, stacklevel=2)
        if self.options["gtav_mismatch"] == "drop":
            kept = [s for s in samples if str(s.label) not in mismatched]
            if not kept:
                # An empty split would train on nothing or evaluate to a NaN mIoU.
                raise self.layout_error(
                    f"every one of the {len(samples)} image/label pair(s) differs in size, "
                    f"so --gtav_mismatch drop leaves no sample (e.g. {listing.split(', ')[0]}); "
                    f"check that labels/ matches images/, or pass --gtav_mismatch resize")
            return kept
        for sample in samples:
            if str(sample.label) in mismatched:
                self.label_sizes[sample.label] = tuple(mismatched[str(sample.label)][0])
        return samples

    def _size_mismatches(self, samples):
        """{label path: ((W, H) image, (W, H) label)} of pairs whose sizes differ (cached)."""
        fingerprint = files_fingerprint(samples, self.root)
        header = {"kind": "sizes", "dataset": self.name, "split": self.split,
                  "fingerprint": fingerprint, "num_samples": len(samples)}
        path = cache_path(self.cache_dir, f"{self.name}_{self.split}_sizes", fingerprint)
        payload = load_cache(path, header)
        if payload is not None:
            try:
                return {str(self.root / rel): (tuple(img), tuple(lab))
                        for rel, (img, lab) in payload.items()}
            except (TypeError, ValueError) as error:
                warnings.warn(f"cache file {path} is corrupt ({error}); recomputing it",
                              RuntimeWarning, stacklevel=2)
        sizes = parallel_map(pair_sizes, [(s.image, s.label) for s in samples], self.workers,
                             desc=f"checking {self.name}/{self.split} sizes")
        mismatched = {str(s.label): (img, lab)
                      for s, (img, lab) in zip(samples, sizes) if img != lab}
        save_cache(path, header, {
            str(s.label.relative_to(self.root)): [list(img), list(lab)]
            for s, (img, lab) in zip(samples, sizes) if img != lab})
        return mismatched
