"""``--wt_layer`` codes: the one table of what each code places at a trunk position.

``--wt_layer`` holds 7 ints, one per trunk position (METHOD.md §1.3; which position is which
is in each trunk's docstring). A code names the normalisation layer put there (a name of
``network/norms.py``) and, for the RobustNet methods, the whitening loss it asks for
(``loss/whitening.py``). The table lives at the bottom layer because both ``network/`` (which
builds the layers) and ``loss/`` (which picks the whitening loss) read it.
"""

from dataclasses import dataclass

WT_LAYER_LENGTH = 7
OFFICIAL_WT_LAYER = (0, 0, 1, 1, 1, 0, 0)  # the official BlindNet recipe's (configs/)
# A library caller's default, as --wt_layer's (the official argparse's): no norm layer placed.
DEFAULT_WT_LAYER = (0,) * WT_LAYER_LENGTH


@dataclass(frozen=True)
class WtCode:
    """What one ``--wt_layer`` code means."""

    norm: str | None        # network/norms.py name of the layer placed; None: nothing
    whitening: str | None   # RobustNet whitening loss the code asks for ("iw", "isw"), or None
    method: str             # the method it comes from, for messages and docs


WT_LAYER_CODES = {
    0: WtCode(None, None, "none"),
    1: WtCode("instance_whitening", "iw", "IW/IRW (collected IN)"),
    2: WtCode("instance_whitening", "isw", "ISW (collected IN)"),
    3: WtCode("instancenorm", None, "IN"),
    4: WtCode("instancenorm_affine", None, "IN affine (IBN)"),
    5: WtCode("switchable_whitening", None, "SW (ResNet trunks)"),
}
WT_LAYER_VALUES = tuple(WT_LAYER_CODES)


def whitening_modes(wt_layer):
    """The whitening-loss modes (``{"iw"}``, ``{"isw"}``, both or none) the codes of
    ``wt_layer`` ask for; a value given as a norm layer name asks for none."""
    codes = [as_wt_value(v) for v in wt_layer]
    return {WT_LAYER_CODES[c].whitening for c in codes if c in WT_LAYER_CODES} - {None}


def as_wt_value(value):
    """One ``--wt_layer`` value as the table uses it: a code as ``int`` (``"1"`` -> 1), any
    other text unchanged (a norm layer name, checked by ``network.instance_norm``)."""
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.lstrip("-").isdigit() else text
    return int(value)
