"""FSDP2 (`fully_shard`): what each rank holds, and saving only the adapter of a sharded model."""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .distributed import StackSpec, build_stack


def _local(t: torch.Tensor) -> torch.Tensor:
    """The part of a tensor this rank stores: a DTensor's local shard, or the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t


def _nbytes(t: torch.Tensor) -> int:
    local = _local(t)
    return local.numel() * local.element_size()


@dataclass(frozen=True)
class Footprint:
    """Bytes one rank holds after a training step (Adam's `step` counters left out)."""

    spec: StackSpec
    sharded: bool
    world_size: int
    parameters: int
    gradients: int
    optimizer_state: int

    @property
    def total(self) -> int:
        """Parameters + gradients + optimizer state, in bytes."""
        return self.parameters + self.gradients + self.optimizer_state


def footprint(model: nn.Module, optimizer: torch.optim.Optimizer, spec: StackSpec, sharded: bool) -> Footprint:
    """Count this rank's bytes of parameters, gradients and optimizer state (local shards of DTensors)."""
    params = list(model.parameters())
    state = [v for s in optimizer.state.values() for k, v in s.items() if k != "step" and torch.is_tensor(v)]
    world = dist.get_world_size() if dist.is_initialized() else 1
    return Footprint(spec, sharded, world, sum(_nbytes(p) for p in params),
                     sum(_nbytes(p.grad) for p in params if p.grad is not None), sum(_nbytes(v) for v in state))


def shard_stack(model: nn.Module) -> nn.Module:
    """FSDP2: one unit per stack layer (frozen base and adapter together), then the root (the head).

    Under gloo the mesh is a CPU mesh even where a GPU exists (FSDP2's default mesh would be on the GPU)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    mesh = init_device_mesh("cpu", (dist.get_world_size(),)) if dist.get_backend() == "gloo" else None
    for layer in model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _train(model: nn.Module, spec: StackSpec, n_steps: int, lr: float = 1e-2) -> torch.optim.Optimizer:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    gen = torch.Generator().manual_seed(spec.seed + (dist.get_rank() if dist.is_initialized() else 0))
    for _ in range(n_steps):
        x, y = torch.randn(4, spec.d, generator=gen), torch.randint(spec.n_classes, (4,), generator=gen)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return opt  # gradients of the last step kept, as they are between backward and zero_grad


def step_footprint(spec: StackSpec, sharded: bool) -> Footprint:
    """One Adam step on the spec's stack, sharded with FSDP2 or not; this rank's footprint."""
    model = build_stack(spec)
    if sharded:
        shard_stack(model)
    opt = _train(model, spec, 1)
    return footprint(model, opt, spec, sharded)


def fsdp2_footprints(rank: int, world_size: int, specs: list[StackSpec]) -> list[Footprint]:
    """Worker: step_footprint of each spec, sharded over the process group."""
    return [step_footprint(spec, True) for spec in specs]


def adapter_names(model: nn.Module) -> list[str]:
    """Names of the adapter's parameters (those that require grad)."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


@dataclass(frozen=True)
class AdapterRoundTrip:
    """Rank 0's view of saving a sharded model's adapter and loading it into a fresh sharded model."""

    path: str
    n_tensors: int
    file_bytes: int
    equal_after_load: bool  # gathered again from the fresh model: equal to what was saved
    differed_before_load: bool  # the fresh model's adapter differed from the saved one before loading


def fsdp2_adapter_roundtrip(rank: int, world_size: int, spec: StackSpec, path: str, n_steps: int = 2
                            ) -> AdapterRoundTrip | None:
    """Worker: train a sharded LoRA stack, gather the adapter on rank 0 and save it to `path`, load it
    into a fresh sharded stack (rank 0 broadcasts), gather again and compare."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, set_model_state_dict
    full = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model = shard_stack(build_stack(spec))
    _train(model, spec, n_steps)
    names = adapter_names(model)
    saved = {k: v for k, v in get_model_state_dict(model, options=full).items() if k in names}  # {} off rank 0
    if rank == 0:
        torch.save(saved, path)
    fresh = shard_stack(build_stack(spec))  # the same frozen base, an untrained adapter
    before = {k: v for k, v in get_model_state_dict(fresh, options=full).items() if k in names}
    load = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False)
    set_model_state_dict(fresh, torch.load(path) if rank == 0 else {}, options=load)
    after = {k: v for k, v in get_model_state_dict(fresh, options=full).items() if k in names}
    if rank != 0:
        return None
    return AdapterRoundTrip(path, len(saved), os.path.getsize(path),
                            all(torch.equal(after[k], saved[k]) for k in saved),
                            any(not torch.equal(before[k], saved[k]) for k in saved))


def fsdp_lesson(rank: int, world_size: int, specs: list[StackSpec], adapter_spec: StackSpec, path: str) -> dict:
    """Worker: FSDP1 with mixed units on the CPU, FSDP2 footprints, and the adapter round trip."""
    from .distributed import fsdp1_on_cpu
    return dict(fsdp1=fsdp1_on_cpu(rank, world_size, adapter_spec), footprints=fsdp2_footprints(rank, world_size, specs),
                roundtrip=fsdp2_adapter_roundtrip(rank, world_size, adapter_spec, path))
