"""Foggy Cityscapes (Sakaridis et al. 2018): Cityscapes with synthetic fog of density β.

Layout relative to the root (``leftImg8bit_trainvaltest_foggy.zip`` and Cityscapes'
``gtFine_trainvaltest.zip``)::

    leftImg8bit_foggy/<split>/<city>/<stem>_leftImg8bit_foggy_beta_<β>.png
    gtFine/<split>/<city>/<stem>_gtFine_labelIds.png

β (the ``foggy_beta`` option, ``--foggy_beta``) is 0.005, 0.01 or 0.02 (default, the
densest fog, which adverse-condition tables report); every image exists once per β and
only the chosen one is read. Labels are Cityscapes labelIds, decoded like Cityscapes'.
Images are normalised like every dataset other than Cityscapes under each protocol
(ImageNet statistics).
"""

from datasets.base import SegmentationDataset
from datasets.cityscapes import LABEL_SUFFIX, decode_cityscapes_label
from datasets.label_codes import EXPECTED_LABEL_VALUES

BETAS = ("0.005", "0.01", "0.02")
DEFAULT_BETA = 0.02


def beta_string(beta):
    """The β of a file name (``0.02`` -> ``"0.02"``); ValueError for other densities."""
    for text in BETAS:
        if float(beta) == float(text):
            return text
    raise ValueError(f"--foggy_beta must be one of {', '.join(BETAS)}, got {beta!r}")


def image_suffix(beta):
    return f"_leftImg8bit_foggy_beta_{beta_string(beta)}.png"


class FoggyCityscapes(SegmentationDataset):
    """Foggy Cityscapes at one β: ``leftImg8bit_foggy/<split>/<city>/`` pairs."""

    name = "foggy_cityscapes"
    aliases = ("foggycityscapes", "foggy-cityscapes")
    env_var = "BLINDNET_FOGGY_CITYSCAPES_DIR"
    root_flag = "--foggy_cityscapes_dir"
    layout = (
        "  <FOGGY_CITYSCAPES_DIR>/\n"
        "    leftImg8bit_foggy/{train,val}/<city>/<stem>_leftImg8bit_foggy_beta_<beta>.png\n"
        "    gtFine/{train,val}/<city>/<stem>_gtFine_labelIds.png\n"
        "  (<beta> = 0.005, 0.01 or 0.02, chosen with --foggy_beta; labels are Cityscapes "
        "labelIds)")
    label_decoder = staticmethod(decode_cityscapes_label)

    def __init__(self, root, split, *, foggy_beta=DEFAULT_BETA, **options):
        self.beta = beta_string(foggy_beta)  # before listing: the file names depend on it
        super().__init__(root, split, **options)

    @property
    def expected_labels(self):
        return EXPECTED_LABEL_VALUES["cityscapes"]

    def list_samples(self, folder):
        suffix = image_suffix(self.beta)
        image_split = self.require_dir(self.root / "leftImg8bit_foggy" / folder,
                                       "image split folder")
        label_split = self.require_dir(self.root / "gtFine" / folder, "label split folder")
        if not any(p.is_dir() for p in image_split.iterdir()):
            raise self.layout_error(f"no city folders in {image_split}")
        listed = []
        for image in self.list_files(image_split, suffix, pattern="*"):
            stem = image.name[:-len(suffix)]
            listed.append((image, stem, [label_split / image.parent.name
                                         / f"{stem}{LABEL_SUFFIX}"]))
        return listed

    def __repr__(self):
        return super().__repr__()[:-1] + f", beta={self.beta})"
