"""DistributedDataParallel options, decided from the model and the criterion (docs/GPU.md).

* ``find_unused_parameters`` costs a walk of the autograd graph every step, so it is on only
  when the step leaves trainable parameters without a gradient: the projection heads
  (``ProjectionHead_cls_*``) run only when the criterion needs embeddings (CWCL/SDCL). So it
  is on for the baseline, IBN, IW, IRW, ISW, SW and ``--use_ca`` alone, off for BlindNet with
  CWCL or SDCL. A batch without anchors changes nothing: the contrastive losses then return
  zero *through* the embeddings, so every head still gets a (zero) gradient.
* ``gradient_as_bucket_view=True``: gradients live in DDP's all-reduce buckets (one copy of
  the gradients less, no bucket-to-grad copy each step).
* ``broadcast_buffers`` (rank 0's buffers copied to every rank before each forward) is off
  when every buffer's module keeps it identical on all ranks by itself: the norm layers
  declaring ``synced_statistics`` (``network/norms.py``: SyncBatchNorm, which the multi-GPU
  runs convert every BatchNorm to, and Switchable Whitening) reduce their statistics over the
  process group. Plain BatchNorm (gloo on CPU) keeps it on.
"""

import torch

from network.norms import declared

EMBEDDING_HEAD_PREFIX = "ProjectionHead_cls_"


def unused_parameter_names(model, with_embeddings):
    """Trainable parameters the training step leaves without a gradient (names)."""
    if with_embeddings:
        return []
    return [name for name, param in model.named_parameters()
            if param.requires_grad and name.startswith(EMBEDDING_HEAD_PREFIX)]


def buffers_need_broadcast(model):
    """Whether some buffer belongs to a module that does not keep it in step across ranks."""
    return any(next(module.buffers(recurse=False), None) is not None
               and not getattr(declared(module), "synced_statistics", False)
               for module in model.modules())


def ddp_options(model, with_embeddings):
    """Keyword arguments of ``DistributedDataParallel`` for ``model`` (the bare module, after
    SyncBatchNorm conversion) trained with or without the embedding heads."""
    return {"find_unused_parameters": bool(unused_parameter_names(model, with_embeddings)),
            "gradient_as_bucket_view": True,
            "broadcast_buffers": buffers_need_broadcast(model)}


def wrap_ddp(model, device, with_embeddings):
    """``model`` in DDP with :func:`ddp_options`; returns ``(wrapped, options)``."""
    options = ddp_options(model, with_embeddings)
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids,
                                                     **options), options
