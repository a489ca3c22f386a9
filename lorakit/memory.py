"""Where training memory goes: parameters, gradients, optimizer state and saved activations, in bytes."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ._args import as_args, call_model, check_loss
from .korthikanti import korthikanti_layer_bytes, predict_layer_activations  # noqa: F401 (their old home)

MIB = 2**20
CATEGORIES = ("parameters", "gradients", "optimizer_state", "activations")


def storage_key(t: torch.Tensor) -> tuple[str, int]:
    """Identify a tensor's storage: (device, address of its first byte); views share it."""
    return (str(t.device), t.untyped_storage().data_ptr())


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes of a tensor's elements (numel * element_size)."""
    return t.numel() * t.element_size()


def unique_parameters(model: nn.Module) -> list[nn.Parameter]:
    """model.parameters() already yields a shared parameter once."""
    return list(model.parameters())


@dataclass(frozen=True)
class MemoryReport:
    """Memory of one training step, in bytes; peaks are the CUDA allocator's (None on other devices)."""

    parameters: int
    gradients: int
    optimizer_state: int
    activations: int  # saved for backward: each storage once, parameters' storages left out
    peak_forward: int | None = None  # max_memory_allocated during forward (+ loss)
    peak_backward: int | None = None
    peak_optimizer: int | None = None

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer_state + self.activations

    def to_frame(self):
        """A pandas DataFrame: one row per category (and total), columns bytes and MiB."""
        import pandas as pd

        names = list(CATEGORIES) + ["total"]
        values = [getattr(self, n) for n in names]
        return pd.DataFrame({"bytes": values, "MiB": [round(v / MIB, 3) for v in values]}, index=names)

    def __repr__(self) -> str:
        lines = ["MemoryReport (bytes, MiB):"]
        for name in list(CATEGORIES) + ["total"]:
            v = getattr(self, name)
            lines.append(f"  {name:<16}{v:>15,} {v / MIB:>10.3f}")
        for name in ("peak_forward", "peak_backward", "peak_optimizer"):
            v = getattr(self, name)
            if v is not None:
                lines.append(f"  {name:<16}{v:>15,} {v / MIB:>10.3f}  (CUDA allocator)")
        return "\n".join(lines)


class SavedTensorRecorder:
    """saved_tensors_hooks that note the storage of each tensor autograd saves.

    While recording, it holds a reference to every saved storage so that no address is freed
    and reused by a later tensor during forward (which would make two storages look like one);
    call release() before backward so that backward can free them as it normally does.
    """

    def __init__(self):
        self.sizes: dict[tuple[str, int], int] = {}  # storage key -> nbytes of the storage
        self._held: list[torch.UntypedStorage] = []
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        self.sizes[storage_key(t)] = storage.nbytes()
        self._held.append(storage)
        return t  # autograd keeps the tensor itself, as without hooks

    @staticmethod
    def _unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    def __enter__(self) -> "SavedTensorRecorder":
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    def release(self) -> None:
        self._held.clear()

    def bytes_excluding(self, excluded: set[tuple[str, int]]) -> int:
        return sum(n for k, n in self.sizes.items() if k not in excluded)


def _cuda_peak_start(device: torch.device) -> None:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)


def _cuda_peak(device: torch.device) -> int:
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def measure_memory(
    model: nn.Module,
    inputs: torch.Tensor | tuple,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer | None = None,
) -> MemoryReport:
    """Run one training step and count its memory in bytes (exact on any device).

    parameters: every parameter once; gradients: the .grad tensors after backward;
    optimizer_state: every tensor in optimizer.state after optimizer.step() (0 without an
    optimizer); activations: the tensors autograd saved for backward, each storage once,
    the parameters' storages left out. Gradients are set to None afterwards, so a second
    call measures the same step again (optimizer state stays, as in training).
    """
    args = as_args(inputs)
    params = unique_parameters(model)
    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters (requires_grad=True): nothing to train")
    if any(p.grad is not None for p in params):
        raise ValueError("some parameters already hold a .grad; call zero_grad(set_to_none=True) first")
    device = params[0].device
    on_cuda = device.type == "cuda"
    param_storages = {storage_key(p) for p in params}

    if on_cuda:
        _cuda_peak_start(device)
    with SavedTensorRecorder() as recorder:
        loss = check_loss(loss_fn(call_model(model, args)))
    activations = recorder.bytes_excluding(param_storages)
    recorder.release()
    peak_forward = _cuda_peak(device) if on_cuda else None

    if on_cuda:
        _cuda_peak_start(device)
    loss.backward()
    del loss
    peak_backward = _cuda_peak(device) if on_cuda else None
    gradients = sum(tensor_bytes(p.grad) for p in params if p.grad is not None)

    optimizer_state, peak_optimizer = 0, None
    if optimizer is not None:
        if on_cuda:
            _cuda_peak_start(device)
        optimizer.step()
        peak_optimizer = _cuda_peak(device) if on_cuda else None
        optimizer_state = optimizer_state_bytes(optimizer)
    for p in params:
        p.grad = None
    return MemoryReport(
        parameters=sum(tensor_bytes(p) for p in params),
        gradients=gradients,
        optimizer_state=optimizer_state,
        activations=activations,
        peak_forward=peak_forward,
        peak_backward=peak_backward,
        peak_optimizer=peak_optimizer,
    )


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor held in optimizer.state (Adam: exp_avg, exp_avg_sq and a scalar step)."""
    return sum(
        tensor_bytes(v) for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)
    )


@dataclass(frozen=True)
class SavedTensor:
    """One tensor autograd saved for backward, and who saved it."""

    op: str  # the autograd node that holds it, e.g. "AddmmBackward0" ("?" if not found in the graph)
    module: str  # the innermost module running when it was saved ("" for the model itself)
    shape: tuple[int, ...]
    dtype: str
    storage_bytes: int  # bytes of its storage
    counted: bool  # True for the first save of a storage that is not a parameter's


@dataclass(frozen=True)
class SavedTensors:
    """Every tensor saved for backward in one forward pass, in the order they were saved."""

    records: tuple[SavedTensor, ...]

    @property
    def total(self) -> int:
        """Bytes, each storage once, parameters' storages left out (= MemoryReport.activations)."""
        return sum(r.storage_bytes for r in self.records if r.counted)

    def to_frame(self, by: str = "op"):
        """Counted bytes grouped by "op", "module", or ("op", "shape", "dtype"), largest first."""
        import pandas as pd

        keys = [by] if isinstance(by, str) else list(by)
        unknown = set(keys) - {"op", "module", "shape", "dtype"}
        if unknown:
            raise ValueError(f"by must name fields op, module, shape, dtype; got {sorted(unknown)}")
        rows = [{**{k: str(getattr(r, k)) for k in keys}, "tensors": 1, "bytes": r.storage_bytes}
                for r in self.records if r.counted]
        if not rows:
            return pd.DataFrame(columns=keys + ["tensors", "bytes", "MiB"]).set_index(keys)
        frame = pd.DataFrame(rows).groupby(keys, sort=False).sum()
        frame = frame.sort_values("bytes", ascending=False, kind="stable")
        frame["MiB"] = (frame["bytes"] / MIB).round(3)
        return frame

    def __repr__(self) -> str:
        counted = sum(r.counted for r in self.records)
        return (f"SavedTensors({len(self.records)} saves, {counted} storages counted, "
                f"total={self.total:,} bytes = {self.total / MIB:.3f} MiB)")


def saved_tensors(
    model: nn.Module,
    inputs: torch.Tensor | tuple,
    loss_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> SavedTensors:
    """List the tensors autograd saves in one forward pass, with the operator and module that saved each.

    The operator comes from walking the autograd graph after forward and unpacking each node's
    saved tensors (their `_saved_*` attributes). Not for checkpointed models: unpacking there
    would recompute. Runs no backward; the graph is dropped on return.
    """
    args = as_args(inputs)
    names = {id(m): n for n, m in model.named_modules()}
    param_storages = {storage_key(p) for p in model.parameters()}
    stack: list[str] = []
    packed: list[tuple[torch.Tensor, str]] = []  # (tensor, module), in save order
    op_of: dict[int, str] = {}  # pack index -> name of the node that holds it
    current = [""]

    def pack(t: torch.Tensor) -> int:
        packed.append((t, stack[-1] if stack else ""))
        return len(packed) - 1

    def unpack(i: int) -> torch.Tensor:
        op_of.setdefault(i, current[0])
        return packed[i][0]

    def enter(mod: nn.Module, _args) -> None:
        stack.append(names[id(mod)])

    def leave(mod: nn.Module, _args, _out) -> None:  # returns None, so the output is unchanged
        stack.pop()

    handles = []
    for m in model.modules():
        handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            out = model(*args)
            root = loss_fn(out) if loss_fn is not None else out
    finally:
        for h in handles:
            h.remove()
    if isinstance(root, torch.Tensor) and root.grad_fn is not None:
        _walk_graph(root.grad_fn, current)
    seen: set[tuple[str, int]] = set()
    records = []
    for i, (t, module) in enumerate(packed):
        key = storage_key(t)
        counted = key not in param_storages and key not in seen
        seen.add(key)
        records.append(SavedTensor(op=op_of.get(i, "?"), module=module, shape=tuple(t.shape),
                                   dtype=str(t.dtype).removeprefix("torch."),
                                   storage_bytes=t.untyped_storage().nbytes(), counted=counted))
    return SavedTensors(tuple(records))


def _walk_graph(root, current: list[str]) -> None:
    """Visit every node once; reading a node's saved tensors triggers `unpack` with its name set."""
    todo, seen = [root], set()
    attrs_of: dict[type, list[str]] = {}  # dir() is slow; nodes of one type share attributes
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        current[0] = node.name()
        if type(node) not in attrs_of:
            attrs = [a for a in dir(node) if a.startswith("_saved_")]
            if not attrs and hasattr(node, "saved_tensors"):  # a custom autograd.Function's ctx
                attrs = ["saved_tensors"]
            attrs_of[type(node)] = attrs
        attrs = attrs_of[type(node)]
        for attr in attrs:
            try:
                getattr(node, attr)
            except RuntimeError:  # e.g. an attribute freed already; nothing to attribute
                pass
        todo.extend(fn for fn, _ in node.next_functions)
