"""Workers for several processes (run them with lorakit.launch): train under DDP, count what DDP
all-reduces, FSDP1 on the CPU."""

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel as DDP

from .layers import add_lora


def ranks_hello(rank: int, world_size: int) -> dict:
    """Who am I: rank, world size, backend, and an all-reduced sum of the ranks (0 + 1 + ...)."""
    t = torch.tensor([float(rank)])
    dist.all_reduce(t)
    return dict(rank=rank, world_size=world_size, backend=dist.get_backend(), pid=os.getpid(),
                rank_sum=int(t.item()))


def fail_on_rank(rank: int, world_size: int, bad_rank: int = 1) -> None:
    """Raise on `bad_rank`; the other ranks wait in a collective that never completes."""
    if rank == bad_rank:
        raise RuntimeError(f"rank {rank} failed on purpose")
    dist.barrier()


@dataclass(frozen=True)
class StackSpec:
    """A stack of n_layers Linear(d, d) with ReLU, then a head Linear(d, n_classes)."""

    d: int = 1024
    n_layers: int = 8
    n_classes: int = 2
    r: int | None = None  # None: full fine-tuning; else LoRA of rank r on every stack layer
    alpha: float = 8.0
    train_head: bool = False  # with LoRA: also train the head
    used_layers: int | None = None  # forward only through the first used_layers (None: all)
    checkpoint: str = "none"  # "none", "reentrant" or "nonreentrant": torch.utils.checkpoint per layer
    seed: int = 0


class Stack(nn.Module):
    """The model a StackSpec describes."""

    def __init__(self, spec: StackSpec):
        super().__init__()
        self.spec = spec
        self.layers = nn.ModuleList(nn.Linear(spec.d, spec.d) for _ in range(spec.n_layers))
        self.head = nn.Linear(spec.d, spec.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, d) -> (batch, n_classes)
        for layer in self.layers[: self.spec.used_layers]:
            if self.spec.checkpoint == "none":
                x = torch.relu(layer(x))
            else:
                reentrant = self.spec.checkpoint == "reentrant"
                x = torch.relu(torch.utils.checkpoint.checkpoint(layer, x, use_reentrant=reentrant))
        return self.head(x)


def build_stack(spec: StackSpec) -> Stack:
    """A Stack seeded by spec.seed, with LoRA (and a trainable head) as the spec says."""
    torch.manual_seed(spec.seed)
    model = Stack(spec)
    if spec.r is not None:
        add_lora(model, [f"layers.{i}" for i in range(spec.n_layers)], spec.r, spec.alpha)
        model.head.requires_grad_(spec.train_head)
    return model


def trainable_bytes(model: nn.Module) -> int:
    """Bytes of the parameters that require grad: what one gradient of them weighs."""
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def predict_buckets(model: nn.Module, bucket_cap_mb: float = 25.0,
                    first_bucket_bytes: int = 1024 * 1024) -> tuple[int, ...]:
    """Bucket sizes in bytes that DDP builds at first: trainable parameters in reverse order, a bucket
    closed once it holds at least its cap (the first bucket's cap is first_bucket_bytes)."""
    caps, sizes, current = [first_bucket_bytes], [], 0
    for p in reversed([p for p in model.parameters() if p.requires_grad]):
        current += p.numel() * p.element_size()
        if current >= caps[-1]:
            sizes.append(current)
            caps.append(int(bucket_cap_mb * 1024 * 1024))
            current = 0
    return tuple(sizes + ([current] if current else []))


@dataclass(frozen=True)
class CommRecord:
    """What DDP all-reduced in each step: the bucket sizes in bytes, as the comm hook saw them."""

    spec: StackSpec
    find_unused_parameters: bool
    trainable_bytes: int
    steps: tuple[tuple[int, ...], ...]  # per step, per bucket: bytes all-reduced
    error: str = ""  # type and first line of the error that stopped the run, if one did
    trained: tuple[str, ...] = field(default=())  # trainable parameters whose value changed

    @property
    def bytes_per_step(self) -> tuple[int, ...]:
        """Bytes all-reduced in each step (the sum over its buckets)."""
        return tuple(sum(s) for s in self.steps)


def _record_hook(sizes: list, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """A comm hook: note the bucket's size in bytes, then all-reduce it as DDP would by default."""
    sizes.append(bucket.buffer().numel() * bucket.buffer().element_size())
    return allreduce_hook(None, bucket)


def _one_comm_record(spec: StackSpec, find_unused: bool, n_steps: int, batch: int, device: torch.device
                     ) -> CommRecord:
    model = build_stack(spec).to(device)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    ddp = DDP(model, find_unused_parameters=find_unused)
    per_step: list[list[int]] = []
    sizes: list[int] = []
    ddp.register_comm_hook(sizes, _record_hook)
    opt = torch.optim.SGD([p for p in ddp.parameters() if p.requires_grad], lr=0.1)
    gen = torch.Generator().manual_seed(spec.seed + dist.get_rank())
    error = ""
    try:
        for _ in range(n_steps):
            x = torch.randn(batch, spec.d, generator=gen).to(device)
            y = torch.randint(spec.n_classes, (batch,), generator=gen).to(device)
            sizes.clear()
            nn.functional.cross_entropy(ddp(x), y).backward()
            per_step.append(list(sizes))
            opt.step()
            opt.zero_grad()
    except Exception as err:  # the lesson shows DDP's own error message
        error = f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"
    trained = tuple(n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n]))
    return CommRecord(spec, find_unused, trainable_bytes(model), tuple(tuple(s) for s in per_step), error,
                      trained)


def ddp_comm_records(rank: int, world_size: int, runs: Sequence[tuple[StackSpec, bool]], n_steps: int = 2,
                     batch: int = 4) -> list[CommRecord]:
    """Worker: for each (spec, find_unused_parameters), a few DDP steps with the recording comm hook."""
    device = torch.device("cuda", rank) if dist.get_backend() == "nccl" else torch.device("cpu")
    return [_one_comm_record(spec, fu, n_steps, batch, device) for spec, fu in runs]


def train_adapter(x: torch.Tensor, y: torch.Tensor, spec: StackSpec, n_steps: int, batch: int,
                  lr: float = 1e-2) -> dict[str, torch.Tensor]:
    """Adam on batches of `batch` rows of (x, y) in order; under a process group of n ranks each
    rank trains on every n-th row of each batch with DDP. Returns the trainable parameters."""
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    model = build_stack(spec)
    net = DDP(model) if world > 1 else model
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for step in range(n_steps):
        i = (step * batch) % (len(y) - batch + 1)
        xb, yb = x[i:i + batch][rank::world], y[i:i + batch][rank::world]
        nn.functional.cross_entropy(net(xb), yb).backward()  # DDP averages the ranks' gradients
        opt.step()
        opt.zero_grad()
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def ddp_train_adapter(rank: int, world_size: int, x: torch.Tensor, y: torch.Tensor, spec: StackSpec,
                      n_steps: int, batch: int, lr: float = 1e-2) -> dict[str, torch.Tensor]:
    """Worker: train_adapter under DDP (each rank gets its share of every batch)."""
    return train_adapter(x, y, spec, n_steps, batch, lr)


@dataclass(frozen=True)
class FSDP1Units:
    """FSDP1 with one unit per stack layer (frozen base and adapter mixed), on the CPU: this rank's view."""

    error_without_orig_params: str  # use_orig_params=False: the error FSDP1 raises
    flat_grad_bytes: int  # use_orig_params=True: bytes of this rank's flat gradients after one backward


def fsdp1_on_cpu(rank: int, world_size: int, spec: StackSpec) -> FSDP1Units:
    """Worker: wrap the spec's stack in FSDP1, one unit per layer, on the CPU (device_id), with
    use_orig_params False (refused) and True (one backward: the flat gradients' bytes)."""
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy
    results = []
    for orig in (False, True):
        model = build_stack(spec)
        try:
            fsdp = FSDP(model, device_id=torch.device("cpu"), use_orig_params=orig,
                        auto_wrap_policy=ModuleWrapPolicy({type(layer) for layer in model.layers}))
        except ValueError as err:
            results.append(f"{type(err).__name__}: {str(err).strip().splitlines()[0]}")
            continue
        x, y = torch.randn(4, spec.d), torch.randint(spec.n_classes, (4,))
        nn.functional.cross_entropy(fsdp(x), y).backward()
        results.append(sum(h.flat_param.grad.numel() * h.flat_param.grad.element_size()
                           for m in FSDP.fsdp_modules(fsdp) if (h := m._handle) is not None
                           and h.flat_param.grad is not None))
    return FSDP1Units(*results)


def ddp_lesson(rank: int, world_size: int, x: torch.Tensor, y: torch.Tensor, spec: StackSpec, n_steps: int,
               batch: int, runs: Sequence[tuple[StackSpec, bool]], comm_steps: int = 3) -> dict:
    """Worker: ddp_train_adapter, then ddp_comm_records (one start of the processes for both)."""
    return dict(adapter=train_adapter(x, y, spec, n_steps, batch),
                records=ddp_comm_records(rank, world_size, runs, comm_steps))
