"""Weights a checkpoint leaves out because they come unchanged from a file (docs/VFM.md).

A ``network.vfm`` model whose frozen DINOv2 trunk was loaded from ``--pretrained`` reports
it through ``model.external_weights()``: the trunk's state keys, the file and a SHA-256 of
the loaded tensors. Checkpoints then hold only what trains (Rein's adapter, the head; Rein's
own checkpoints do the same, docs/VFM_METHODS.md §2.6) plus ``external_weights``, the file
and fingerprint without the keys. Loading such a checkpoint (``--resume``, ``--snapshot``,
``valid.py``) accepts the missing trunk keys only when the model's trunk came from a file,
and, when the checkpoint records a fingerprint, only when it is the same trunk: a resume is
exact, and an evaluation never silently runs a head on another trunk. A model without
``external_weights`` (the CNNs) or with a random trunk saves everything.
"""

import network

CHECKPOINT_KEY = "external_weights"


def model_external_weights(model):
    """``model.external_weights()`` (``{"keys", "source", "sha256"}``) or None."""
    report = getattr(model, "external_weights", None)
    return report() if callable(report) else None


def split_external(model, state):
    """``(state without the external keys, the record a checkpoint keeps or None)``.

    ``state``: ``model.state_dict()`` (bare names). The record is ``{"source", "sha256",
    "count"}``.
    """
    external = model_external_weights(model)
    if external is None:
        return state, None
    keys = set(external["keys"])
    kept = {key: value for key, value in state.items() if key not in keys}
    return kept, {"source": external["source"], "sha256": external["sha256"],
                  "count": len(keys)}


def recorded_external(checkpoint):
    """The ``external_weights`` record of a checkpoint, or None."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get(CHECKPOINT_KEY), dict):
        return checkpoint[CHECKPOINT_KEY]
    return None


def recorded_source(checkpoint):
    """The weight file a checkpoint says its left-out weights come from (or None)."""
    record = recorded_external(checkpoint)
    return None if record is None else record.get("source")


def cover_external(report, model, checkpoint, flag, path):
    """Drop from ``report.missing`` the keys the model holds from its own weight file.

    ``report``: a ``utils.checkpoint.LoadReport`` of loading ``checkpoint`` into ``model``.
    Returns the number of keys covered. Raises ValueError (naming ``flag``, ``path`` and the
    file to pass) when the checkpoint left weights out that this model does not hold from a
    file, or holds from another file (a different fingerprint).
    """
    record = recorded_external(checkpoint)
    external = model_external_weights(model)
    if external is None:
        if record is not None and report.missing:
            raise ValueError(f"{flag} {path} leaves out {record.get('count', '?')} frozen "
                             f"weights that come from {record.get('source')}: pass "
                             f"--pretrained {record.get('source')}")
        return 0
    if record is not None and record.get("sha256") != external["sha256"]:
        raise ValueError(
            f"{flag} {path} was trained on the frozen weights of {record.get('source')} "
            f"(sha256 {str(record.get('sha256'))[:12]}), but this model loaded "
            f"{external['source']} (sha256 {external['sha256'][:12]}), which differs: pass "
            f"--pretrained {record.get('source')}")
    covered = set(external["keys"])
    before = len(report.missing)
    report.missing = [key for key in report.missing if key not in covered]
    return before - len(report.missing)


def eval_trunk_source(arch, pretrained, checkpoint):
    """The ``pretrained`` a model evaluated from ``checkpoint`` is built with: ``False`` for
    the CNNs (the checkpoint holds every weight); for the VFM segmenters ``--pretrained``
    when given (a DINOv2 file, or ``False`` for ``none``), else the file the checkpoint
    records for the trunk it left out (:func:`recorded_source`), else ``False``."""
    if not network.is_vfm_arch(arch):
        return False
    if pretrained is not None:
        return pretrained
    return recorded_source(checkpoint) or False
