"""Counting FLOPs of a forward and a backward pass with torch.utils.flop_counter."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from ._args import as_args, call_model, check_int, check_loss


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one step (a multiply-add counts 2), as PyTorch's flop counter counts them."""

    forward: int
    backward: int

    @property
    def total(self) -> int:
        return self.forward + self.backward

    def __repr__(self) -> str:
        return f"FlopCount(forward={self.forward:,}, backward={self.backward:,}, total={self.total:,})"


def count_flops(
    model: nn.Module,
    inputs: torch.Tensor | tuple,
    loss_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> FlopCount:
    """FLOPs of model(*inputs) and, if loss_fn is given, of loss_fn(output).backward()."""
    args = as_args(inputs)
    with FlopCounterMode(display=False) as fwd:
        out = call_model(model, args)
        loss = check_loss(loss_fn(out)) if loss_fn is not None else None
    if loss is None:
        return FlopCount(forward=fwd.get_total_flops(), backward=0)
    try:
        with FlopCounterMode(display=False) as bwd:
            loss.backward()
    finally:
        model.zero_grad(set_to_none=True)  # leave no .grad behind for the next helper
    return FlopCount(forward=fwd.get_total_flops(), backward=bwd.get_total_flops())


def _is_lora_name(name: str) -> bool:
    """Default adapter test: some part of the dotted module name starts with 'lora'."""
    return any(part.startswith("lora") for part in name.split("."))


@dataclass(frozen=True)
class FlopSplit:
    """One step's FLOPs split into backbone and adapter, forward and backward.

    In the memory experiments' notation: FP = backbone_forward, fp = adapter_forward, BP = backbone_backward,
    bp = adapter_backward. Backward FLOPs in a frozen module (the input gradients that carry the
    signal through it) count as backbone.
    """

    backbone_forward: int
    adapter_forward: int
    backbone_backward: int
    adapter_backward: int

    @property
    def forward(self) -> int:
        return self.backbone_forward + self.adapter_forward

    @property
    def backward(self) -> int:
        return self.backbone_backward + self.adapter_backward

    @property
    def total(self) -> int:
        return self.forward + self.backward

    def __repr__(self) -> str:
        return (f"FlopSplit(FP={self.backbone_forward:,}, fp={self.adapter_forward:,}, "
                f"BP={self.backbone_backward:,}, bp={self.adapter_backward:,})")


class _AdapterMeter:
    """Adds up the FLOPs a FlopCounterMode counts inside adapter modules, forward and backward.

    Forward: module hooks on every adapter module (depth-counted, so nested ones count once).
    Backward: the autograd nodes each adapter module created, found by walking its output's
    graph back to its inputs, get pre- and post-hooks. Module-level backward attribution
    (FlopCounterMode's own) is not used: an input shared by a LoRA branch and its frozen layer
    gets its gradient only after both, so the frozen layer's backward would land on the branch.
    """

    def __init__(self, model: nn.Module, mode: FlopCounterMode, is_adapter: Callable[[str], bool]):
        self.mode, self.depth, self.start = mode, 0, 0
        self.forward = self.backward = 0
        self.nodes: set = set()
        self.handles = []
        for name, module in model.named_modules():
            if name and is_adapter(name):
                self.handles.append(module.register_forward_pre_hook(self._enter))
                self.handles.append(module.register_forward_hook(self._exit))

    def _enter(self, module, args):
        if self.depth == 0:
            self.start = self.mode.get_total_flops()
        self.depth += 1

    def _exit(self, module, args, output):
        self.depth -= 1
        if self.depth == 0:
            self.forward += self.mode.get_total_flops() - self.start
        stop = {t.grad_fn for t in tree_leaves(args) if isinstance(t, torch.Tensor) and t.grad_fn is not None}
        todo = [t.grad_fn for t in tree_leaves(output) if isinstance(t, torch.Tensor) and t.grad_fn is not None]
        while todo:
            node = todo.pop()
            if node in stop or node in self.nodes:
                continue
            self.nodes.add(node)
            node.register_prehook(self._node_enter)
            node.register_hook(self._node_exit)
            todo.extend(n for n, _ in node.next_functions if n is not None)

    def _node_enter(self, grad_outputs):
        self.start = self.mode.get_total_flops()

    def _node_exit(self, grad_inputs, grad_outputs):
        self.backward += self.mode.get_total_flops() - self.start

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def split_flops(
    model: nn.Module,
    inputs: torch.Tensor | tuple,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    is_adapter: Callable[[str], bool] = _is_lora_name,
) -> FlopSplit:
    """count_flops split into adapter modules (is_adapter(module name) is true) and the rest (the backbone).

    The default is_adapter takes modules with a name part starting with 'lora' (lorakit's
    and peft's lora_A / lora_B, the memory experiments' `lora` branches and `lora_tower`).
    """
    args = as_args(inputs)
    with FlopCounterMode(display=False) as mode:
        meter = _AdapterMeter(model, mode, is_adapter)
        try:
            loss = check_loss(loss_fn(call_model(model, args)))
            forward = mode.get_total_flops()
            loss.backward()
            backward = mode.get_total_flops() - forward
        finally:
            meter.remove()
            model.zero_grad(set_to_none=True)  # leave no .grad behind for the next helper
    return FlopSplit(
        backbone_forward=forward - meter.forward,
        adapter_forward=meter.forward,
        backbone_backward=backward - meter.backward,
        adapter_backward=meter.backward,
    )


@dataclass(frozen=True)
class OpCount:
    """ATen operator calls in one training step, per phase, as {op name: calls}; nn.Module calls in the forward."""

    forward_ops: dict[str, int]
    backward_ops: dict[str, int]
    optimizer_ops: dict[str, int]
    module_calls: int  # nn.Module.__call__ in the forward pass: Python overhead the op counts miss

    @property
    def forward(self) -> int:
        return sum(self.forward_ops.values())

    @property
    def backward(self) -> int:
        return sum(self.backward_ops.values())

    @property
    def optimizer(self) -> int:
        return sum(self.optimizer_ops.values())

    @property
    def total(self) -> int:
        return self.forward + self.backward + self.optimizer

    def __repr__(self) -> str:
        return (f"OpCount(forward={self.forward}, backward={self.backward}, optimizer={self.optimizer}, "
                f"total={self.total}, module_calls={self.module_calls})")


def count_ops(
    model: nn.Module,
    inputs: torch.Tensor | tuple,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer | None = None,
    warmup: int = 1,
) -> OpCount:
    """Count the ATen operator calls of a step: model(*inputs); loss_fn(out).backward(); optimizer.step().

    Counted below autograd with a TorchDispatchMode (what FlopCounterMode is built on), so these
    are the operators that run, after composite ops such as linear are decomposed. The forward
    phase is model(*inputs) alone; loss_fn belongs to the backward phase, as in time_step.
    `warmup` uncounted steps run first (they update the model), because a first step does
    extra work (Adam creates its state). Calls, not FLOPs: each call costs dispatch overhead
    however small its tensors.
    """
    # Private module, but the home of TorchDispatchMode (torch.utils.flop_counter imports it too).
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Counter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.calls: dict[str, int] = {}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = str(func.overloadpacket)
            self.calls[name] = self.calls.get(name, 0) + 1
            return func(*args, **(kwargs or {}))

    check_int("warmup", warmup, minimum=0)
    args = as_args(inputs)
    for _ in range(warmup):
        loss_fn(model(*args)).backward()
        if optimizer is not None:
            optimizer.step()
        model.zero_grad(set_to_none=True)
    modules = [0]

    def _count_module(module, module_args):
        modules[0] += 1

    handle = nn.modules.module.register_module_forward_pre_hook(_count_module)
    try:
        with _Counter() as fwd:
            out = model(*args)
    finally:
        handle.remove()
    with _Counter() as bwd:
        loss_fn(out).backward()
    opt = _Counter()
    if optimizer is not None:
        with opt:
            optimizer.step()
    model.zero_grad(set_to_none=True)
    return OpCount(dict(fwd.calls), dict(bwd.calls), dict(opt.calls), modules[0])
