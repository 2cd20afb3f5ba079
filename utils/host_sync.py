"""Count the host-device synchronisation points of some code, on any device (CPU included).

A CUDA step is fastest when the host only queues kernels: every point where the host needs
a value from the device makes it wait until the queue has drained, and the GPU then idles
while the host launches the next kernels. Such points are visible on the CPU too, as ops:

* reads of a tensor's values by Python: ``item``, ``tolist``, ``bool(t)``, ``float(t)``,
  ``int(t)``, ``numpy``, ``cpu`` (caught with a ``TorchFunctionMode``);
* ops whose output shape depends on the data (the host must learn the size before it can
  allocate): ``nonzero``, boolean-mask indexing, ``masked_select``, ``unique``, and ops that
  return a Python value (``equal``, a bare ``_local_scalar_dense``) (a ``TorchDispatchMode``);
* tensors made from host data (``torch.tensor(...)``, assigning a Python scalar at an index):
  on CUDA a copy from pageable memory, which blocks. Counted apart as ``host_to_device``.

    >>> with HostSyncCounter() as counter:
    ...     train_step(...)
    >>> counter.total, counter.counts       # e.g. 1, Counter({'tolist': 1})
"""

from collections import Counter

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

READ_METHODS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy",
                "cpu")
_aten = torch.ops.aten
DATA_DEPENDENT_OPS = {
    _aten.nonzero.default: "nonzero",
    _aten.masked_select.default: "masked_select",
    _aten._unique2.default: "unique",
    _aten.unique_dim.default: "unique",
    _aten.unique_consecutive.default: "unique",
    _aten.equal.default: "equal",
    _aten._local_scalar_dense.default: "scalar read",
}
HOST_DATA_OPS = {_aten.lift_fresh.default, _aten.lift_fresh_copy.default}


class _Reads(TorchFunctionMode):
    def __init__(self, owner):
        super().__init__()
        self.owner = owner

    def __torch_function__(self, func, types, inputs=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name not in READ_METHODS:
            return func(*inputs, **(kwargs or {}))
        self.owner.counts[name] += 1
        self.owner.reading += 1  # the read's own ops below are this one point
        try:
            return func(*inputs, **(kwargs or {}))
        finally:
            self.owner.reading -= 1


class _Ops(TorchDispatchMode):
    def __init__(self, owner):
        super().__init__()
        self.owner = owner

    def __torch_dispatch__(self, func, types, inputs=(), kwargs=None):
        owner = self.owner
        if func in HOST_DATA_OPS:
            owner.host_to_device += 1
        elif not owner.reading:
            name = DATA_DEPENDENT_OPS.get(func)
            if name is None and func is _aten.index.Tensor and any(
                    index is not None and index.dtype == torch.bool for index in inputs[1]):
                name = "boolean indexing"
            if name is not None:
                owner.counts[name] += 1
        return func(*inputs, **(kwargs or {}))


class HostSyncCounter:
    """Context manager counting the points listed in the module docstring.

    Attributes: ``counts`` (name -> count), ``total`` (their sum), ``host_to_device``
    (tensors made from host data).
    """

    def __init__(self):
        self.counts, self.host_to_device, self.reading = Counter(), 0, 0
        self._modes = (_Reads(self), _Ops(self))

    @property
    def total(self):
        return sum(self.counts.values())

    def __enter__(self):
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc):
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
        return False
