"""Count the host-device synchronisation points of some code, on any device (CPU included).

A CUDA step is fastest when the host only queues kernels: every point where the host needs
a value from the device makes it wait until the queue has drained, and the GPU then idles
while the host launches the next kernels. Such points are visible on the CPU too:

* reads of a tensor's values by Python: ``item``, ``tolist``, ``bool(t)``, ``float(t)``,
  ``int(t)``, ``numpy``, ``cpu`` (caught with a ``TorchFunctionMode``; on the CPU
  ``tolist`` runs no aten operator at all);
* the operators of ``utils/op_trace.py``'s :data:`~utils.op_trace.HOST_SYNC` table (the one
  list of operators that read a value or an output size back: ``nonzero``, boolean-mask
  indexing, ``masked_select``, ``unique``, ...), caught with a ``TorchDispatchMode``;
* tensors made from host data (``torch.tensor(...)``, assigning a Python scalar at an index):
  on CUDA a copy from pageable memory, which blocks. Counted apart as ``host_to_device``.

    >>> with HostSyncCounter() as counter:
    ...     train_step(...)
    >>> counter.total, counter.counts       # e.g. 1, Counter({'tolist': 1})
    >>> counter.sites                       # {'tolist': Counter({'engine/trainer.py:..': 1})}
"""

from collections import Counter

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from utils.op_trace import HOST_SYNC, caller_site

READ_METHODS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy",
                "cpu")
# Names the counts give some HOST_SYNC operators (the others keep their aten name).
OP_NAMES = {"index": "boolean indexing", "index_put": "boolean indexing",
            "index_put_": "boolean indexing", "_unique2": "unique", "unique_dim": "unique",
            "unique_consecutive": "unique", "_local_scalar_dense": "scalar read",
            "is_nonzero": "scalar read"}
_aten = torch.ops.aten
HOST_DATA_OPS = {_aten.lift_fresh.default, _aten.lift_fresh_copy.default}


class _Reads(TorchFunctionMode):
    def __init__(self, owner):
        super().__init__()
        self.owner = owner

    def __torch_function__(self, func, types, inputs=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name not in READ_METHODS:
            return func(*inputs, **(kwargs or {}))
        self.owner.add(name)
        self.owner.reading += 1  # the read's own operators below are this one point
        try:
            return func(*inputs, **(kwargs or {}))
        finally:
            self.owner.reading -= 1


class _Ops(TorchDispatchMode):
    def __init__(self, owner):
        super().__init__()
        self.owner = owner

    def __torch_dispatch__(self, func, types, inputs=(), kwargs=None):
        owner, kwargs = self.owner, kwargs or {}
        if func in HOST_DATA_OPS:
            owner.host_to_device += 1
        elif not owner.reading:
            op = func.overloadpacket.__name__
            if op in HOST_SYNC and (HOST_SYNC[op] is None or HOST_SYNC[op](inputs, kwargs)):
                owner.add(OP_NAMES.get(op, op))
        return func(*inputs, **kwargs)


class HostSyncCounter:
    """Context manager counting the points listed in the module docstring.

    Attributes: ``counts`` (name -> count), ``total`` (their sum), ``sites`` (name -> Counter
    of call sites, ``path:line (function)`` of the innermost repository frame outside
    ``skip_prefixes``), ``host_to_device`` (tensors made from host data).
    """

    def __init__(self, skip_prefixes=()):
        self.counts, self.sites, self.host_to_device, self.reading = Counter(), {}, 0, 0
        self.skip_prefixes = ("utils/host_sync.py", *skip_prefixes)
        self._modes = (_Reads(self), _Ops(self))

    def add(self, name):
        self.counts[name] += 1
        self.sites.setdefault(name, Counter())[caller_site(self.skip_prefixes)] += 1

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
