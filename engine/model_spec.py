"""The checkpoint defines the model: what it records, flags checked against it, and a guess
for files that record nothing.

Every checkpoint train.py writes records the settings that shape its model (``model``:
``arch``, ``wt_layer``, ``num_classes``, ``norm_semantics``, ``arch_options``,
``norm_layer``, ``head_norm_layer``; older ones only in ``args``, and a record without the
norm layers was trained with the default, BatchNorm).
``valid.py``, ``infer.py`` and ``train.py --snapshot`` build the model from that record
(:func:`resolve_model`): a flag left out takes the recorded value, a flag that contradicts it
is refused naming both values (unless a partial load is asked for). Official checkpoints
and bare state dicts record nothing: they need ``--arch`` and ``--wt_layer``, and
:func:`likely_model` names the architecture their tensors fit, for the error message.

Why the flags alone are not enough: ``--wt_layer`` codes 1-3 add instance norms without any
tensor, so a BlindNet checkpoint (``0 0 1 1 1 0 0``) loads "strictly" into the baseline model
(all zeros) and evaluates a different network without a word.
"""

import torch

import network
from network.instance_norm import validate_wt_layer
from network.norms import DEFAULT_NORM_LAYER
from utils.checkpoint import checkpoint_norm_semantics, extract_state_dict, strip_module_prefix
from utils.labels import NUM_CLASSES
from utils.wt_layer import as_wt_value

MODEL_FIELDS = ("arch", "wt_layer", "num_classes", "norm_semantics", "arch_options",
                "norm_layer", "head_norm_layer")
NORM_LAYER_FIELDS = ("norm_layer", "head_norm_layer")
FLAGS = {"arch": "--arch", "wt_layer": "--wt_layer", "num_classes": "the class count",
         "norm_semantics": "--norm_semantics", "arch_options": "--arch_options",
         "norm_layer": "--norm_layer", "head_norm_layer": "--head_norm_layer"}
# Layouts tried when guessing a file's model; codes 1-3 leave no tensor, so one stands for all.
GUESS_WT_LAYERS = ((0, 0, 1, 1, 1, 0, 0), (0, 0, 0, 0, 0, 0, 0), (0, 0, 4, 4, 4, 0, 0),
                   (0, 0, 5, 5, 5, 0, 0))
OUTPUT_STRIDE_SUFFIXES = ("_OS8", "_OS32")  # same tensors as the factory without the suffix


class ModelFlagError(ValueError):
    """A model flag contradicts the checkpoint, or a checkpoint without a record lacks one."""


def canonical_arch(arch):
    """``network.deepv3.DeepR50V3PlusD`` for any accepted spelling of a factory name (the
    ``network.vfm.`` names have one spelling)."""
    name = str(arch)
    if network.is_vfm_arch(name):
        return name
    for prefix in network.ARCH_PREFIXES:
        name = name.removeprefix(prefix)
    return f"network.deepv3.{name}"


def _wt_values(wt_layer):
    """``wt_layer`` as codes (``int``) and norm-layer names (``str``)."""
    return [as_wt_value(v) for v in wt_layer]


def model_record(checkpoint):
    """``{arch, wt_layer, num_classes, norm_semantics, arch_options, norm_layer,
    head_norm_layer}`` a checkpoint records, or None.

    A field it does not record is None (older checkpoints of ours: ``num_classes``; a file
    with only ``norm_semantics``: the rest), except the norm layers: a checkpoint of ours
    (one recording its architecture) without them was trained with the default
    (BatchNorm). Official checkpoints and bare state dicts give None.
    """
    if not isinstance(checkpoint, dict):
        return None
    model = checkpoint.get("model")
    if isinstance(model, dict) and model.get("arch") and model.get("wt_layer"):
        return {"arch": canonical_arch(model["arch"]),
                "wt_layer": _wt_values(model["wt_layer"]),
                "num_classes": model.get("num_classes"),
                "norm_semantics": model.get("norm_semantics"),
                "arch_options": dict(model.get("arch_options") or {}),
                **{field: model.get(field) or DEFAULT_NORM_LAYER for field in NORM_LAYER_FIELDS}}
    flags = checkpoint.get("args")  # ours from before the "model" entry
    flags = flags if isinstance(flags, dict) else {}
    record = {"arch": canonical_arch(flags["arch"]) if flags.get("arch") else None,
              "wt_layer": _wt_values(flags["wt_layer"]) if flags.get("wt_layer") else None,
              "num_classes": None, "norm_semantics": checkpoint_norm_semantics(checkpoint),
              "arch_options": None}
    if not any(value is not None for value in record.values()):
        return None
    ours = record["arch"] is not None
    return {**record, **{field: flags.get(field) or (DEFAULT_NORM_LAYER if ours else None)
                         for field in NORM_LAYER_FIELDS}}


def model_entry(arch, wt_layer, norm_semantics, num_classes=NUM_CLASSES, arch_options=None, *,
                norm_layer=DEFAULT_NORM_LAYER, head_norm_layer=DEFAULT_NORM_LAYER):
    """The ``model`` entry a training checkpoint records (``arch_options``: the
    ``--arch_options`` sizes as a dict; the norm layers by name)."""
    return {"arch": canonical_arch(arch), "wt_layer": _wt_values(wt_layer),
            "num_classes": int(num_classes), "norm_semantics": norm_semantics,
            "arch_options": dict(arch_options or {}), "norm_layer": norm_layer,
            "head_norm_layer": head_norm_layer}


def _same(field, given, recorded):
    if field == "arch":
        return canonical_arch(given) == canonical_arch(recorded)
    if field == "wt_layer":
        return _wt_values(given) == _wt_values(recorded)
    return given == recorded


def _text(field, value):
    if field == "arch_options":
        return " ".join(f"{key}={item}" for key, item in sorted(value.items())) or "(none)"
    return " ".join(map(str, value)) if field == "wt_layer" else str(value)


def resolve_model(given, record, snapshot, *, partial=False, free=()):
    """The model settings to build, from the flags ``given`` and the checkpoint ``record``.

    Args:
        given: ``{field: flag value, or None when the flag was not given}`` for
            :data:`MODEL_FIELDS` (``num_classes`` is never a flag).
        record: :func:`model_record` of the checkpoint (None: it records nothing).
        snapshot: the checkpoint's path, for messages.
        partial: ``--snapshot_partial``: given flags win over the record (a partial load).
        free: fields a given flag may change without error (train.py's
            ``--norm_semantics``: a new run may train the weights in the other mode).

    Returns ``(settings, from_checkpoint)``: the resolved ``{field: value}`` (None where
    neither says) and the fields taken from the record. Raises :class:`ModelFlagError`.
    """
    settings, taken = {}, []
    for field in MODEL_FIELDS:
        flag, recorded = given.get(field), (record or {}).get(field)
        if flag is None or recorded is None:
            settings[field] = recorded if flag is None else flag
            taken += [field] if flag is None and recorded is not None else []
        elif _same(field, flag, recorded) or partial or field in free:
            settings[field] = flag
        else:
            raise ModelFlagError(
                f"{FLAGS[field]} {_text(field, flag)} given, checkpoint trained with "
                f"{FLAGS[field]} {_text(field, recorded)} ({snapshot}): leave "
                f"{FLAGS[field]} out (the checkpoint defines the model), or pass "
                f"--snapshot_partial to load what fits into the model the flags describe")
    missing = [FLAGS[f] for f in ("arch", "wt_layer") if settings[f] is None]
    if missing:
        raise ModelFlagError(
            f"--snapshot {snapshot} does not record which model it holds (an official "
            f"checkpoint or a bare state dict): pass {' and '.join(missing)}")
    settings["wt_layer"] = list(validate_wt_layer(settings["wt_layer"]))
    num_classes = settings["num_classes"]
    if num_classes is not None and int(num_classes) != NUM_CLASSES:
        raise ModelFlagError(f"--snapshot {snapshot} was trained for {num_classes} classes; "
                             f"this framework's models and metrics have {NUM_CLASSES} (the "
                             f"Cityscapes train ids)")
    return settings, taken


def resolve_from_checkpoint(given, checkpoint, snapshot, *, partial=False, free=()):
    """:func:`resolve_model` against the loaded ``checkpoint``'s record; when a file that
    records nothing lacks ``--arch`` / ``--wt_layer``, the message names the model its
    tensors fit (:func:`describe_likely`)."""
    record = model_record(checkpoint)
    try:
        return resolve_model(given, record, snapshot, partial=partial, free=free)
    except ModelFlagError as exc:
        if record is not None and record["arch"] and record["wt_layer"]:
            raise
        try:
            weights = extract_state_dict(checkpoint, snapshot)
        except ValueError:
            raise exc from None
        raise ModelFlagError(f"{exc}; {describe_likely(weights)}") from None


def _shapes(state_dict):
    return {key: tuple(value.shape) for key, value in strip_module_prefix(state_dict).items()}


def _meta_shapes(arch, wt_layer):
    """Tensor shapes of ``arch`` with ``wt_layer``, built on the meta device (no memory)."""
    try:
        with torch.device("meta"):
            model = network.get_net(arch, NUM_CLASSES, list(wt_layer), pretrained=False)
    except Exception:  # noqa: BLE001 - a layout the trunk does not support is no candidate
        return None
    return _shapes(model.state_dict())


def _overlap(own, found):
    """Share of (key, shape) pairs two shape dicts have in common (Jaccard)."""
    common = sum(1 for key, shape in own.items() if found.get(key) == shape)
    return common / max(1, len(own.keys() | found.keys()))


def likely_model(state_dict):
    """``(arch, wt_layer, exact)``: the factory and layout whose tensors best fit
    ``state_dict`` (``exact``: every name and shape), or None when nothing fits half of them.

    First the factories (one per output stride family), then the layouts of the best one;
    about a second on a CPU. ``wt_layer`` codes 1-3 leave no tensors, so the layout is a
    representative (``0 0 1 1 1 0 0`` also stands for all-zeros).
    """
    found = _shapes(state_dict)
    families = [name for name in network.FACTORIES
                if not name.endswith(OUTPUT_STRIDE_SUFFIXES)]
    scored = []
    for name in families:
        own = _meta_shapes(name, GUESS_WT_LAYERS[0])
        if own is not None:
            scored.append((_overlap(own, found), name))
    if not scored:
        return None
    arch = canonical_arch(max(scored)[1])
    best = None
    for wt_layer in GUESS_WT_LAYERS:
        own = _meta_shapes(arch, wt_layer)
        if own is None:
            continue
        score = _overlap(own, found)
        if best is None or score > best[0]:
            best = (score, list(wt_layer), own == found)
    if best is None or best[0] < 0.5:
        return None
    return arch, best[1], best[2]


def describe_likely(state_dict):
    """``it looks like --arch A --wt_layer W`` for the message of a file that does not
    fit, or an empty string when no factory fits it."""
    guess = likely_model(state_dict)
    if guess is None:
        return "its tensors fit none of this framework's --arch factories"
    arch, wt_layer, exact = guess
    layout = " ".join(map(str, wt_layer))
    return (f"it looks like {'' if exact else 'a variant of '}--arch {arch} --wt_layer "
            f"{layout} (or another output stride of it; --wt_layer codes 1-3 hold no tensors "
            f"and cannot be read from a file)")
