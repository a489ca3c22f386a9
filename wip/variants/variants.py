"""LoRA's relatives in peft, side by side: one LoraConfig per variant, its optimizer groups, its peak memory.

The variants differ in three places only: the LoraConfig (DoRA, rsLoRA, the initialisations PiSSA,
OLoRA, EVA), one extra step after wrapping (EVA's SVD of layer inputs), and the optimizer's
parameter groups (LoRA+). `make_variant` and `variant_groups` cover all three.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ._args import check_int
from .runtime import fewer, scale
from .timeline import memory_timeline

# LoraConfig keywords per variant; "LoRA+" is plain LoRA with other optimizer groups.
VARIANTS: dict[str, dict] = {
    "LoRA": {},
    "DoRA": {"use_dora": True},
    "rsLoRA": {"use_rslora": True},
    "PiSSA": {"init_lora_weights": "pissa"},
    "PiSSA (niter 4)": {"init_lora_weights": "pissa_niter_4"},
    "OLoRA": {"init_lora_weights": "olora"},
    "EVA": {"init_lora_weights": "eva"},
    "LoRA+": {},
}
LORAPLUS_RATIO = 16.0  # lr of B / lr of A, the LoRA+ paper's suggestion (peft's docstring example)


@dataclass(frozen=True)
class Protocol:
    """The training budget and learning-rate protocol of the comparison, one per scale."""

    n_train: int  # first snippets of the fixed, shuffled training split
    n_val: int  # validation snippets: the LR choice and the per-epoch curves
    n_test: int  # test snippets: the final accuracy
    max_length: int  # tokens per snippet, [CLS] and [SEP] included
    batch_size: int
    epochs: int
    seeds: tuple[int, ...]  # one run per seed: head init and batch order
    lr_grid: tuple[float, ...]  # AdamW, linear decay to 0; chosen for LoRA on validation, shared
    r: int = 8
    alpha: float = 8.0
    targets: tuple[str, ...] = ("query", "value")
    threads: int = 2  # torch.set_num_threads on the CPU


def protocol(which: str | None = None) -> Protocol:
    """The protocol at the ci scale (a 2-core CPU, a few minutes) or the full scale (a GPU)."""
    which = which or scale()
    if which == "ci":
        return Protocol(n_train=400, n_val=128, n_test=256, max_length=32, batch_size=32,
                        epochs=2, seeds=(0, 1), lr_grid=(3e-3, 1e-2))
    if which == "full":
        # smoke mode (the full-scale CPU test) keeps the shapes and cuts epochs, seeds and evaluation
        return Protocol(n_train=8087, n_val=fewer(978, 64), n_test=fewer(1007, 64), max_length=64, batch_size=32,
                        epochs=fewer(3), seeds=tuple(range(fewer(3))), lr_grid=(1e-3, 3e-3)[:fewer(2)])
    raise ValueError(f"which must be 'ci' or 'full', got {which!r}")


def variant_config(name: str, r: int = 8, alpha: float = 8.0, targets: Sequence[str] = ("query", "value"),
                   task_type: str | None = "SEQ_CLS"):
    """peft's LoraConfig for one of VARIANTS (EVA with rho=1: every layer keeps rank r)."""
    from peft import EvaConfig, LoraConfig

    if name not in VARIANTS:
        raise ValueError(f"name must be one of {list(VARIANTS)}, got {name!r}")
    check_int("r", r)
    extra = dict(VARIANTS[name])
    if name == "EVA":
        extra["eva_config"] = EvaConfig(rho=1.0)
    return LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), task_type=task_type, **extra)


def eva_batches(x: torch.Tensor, mask: torch.Tensor, batch_size: int = 32, n: int = 4) -> list[dict]:
    """A few unlabelled batches for EVA's SVD: dicts of input_ids and attention_mask (no labels)."""
    return [{"input_ids": x[i:i + batch_size], "attention_mask": mask[i:i + batch_size]}
            for i in range(0, min(len(x), n * batch_size), batch_size)]


def principal_directions(x: torch.Tensor, r: int) -> torch.Tensor:
    """The top r principal directions (r, d) of rows x (n, d): right singular vectors of x - mean."""
    _, _, vh = torch.linalg.svd(x - x.mean(dim=0), full_matrices=False)
    return vh[:r]


@torch.no_grad()
def eva_state_dict(peft_model: nn.Module, batches: list[dict], r: int) -> dict[str, torch.Tensor]:
    """EVA's lora_A for every LoRA layer: principal directions of its inputs on the batches' real tokens.

    peft's own `get_eva_state_dict` reaches the same directions by an incremental PCA that loops
    over the batches until they stop moving; one exact SVD per layer is faster on a CPU.
    """
    from peft.tuners.lora import LoraLayer

    inputs: dict[str, list] = {}
    hooks = [module.register_forward_hook(
        lambda mod, args, out, name=name: inputs.setdefault(name, []).append(args[0][mask]))
        for name, module in peft_model.named_modules() if isinstance(module, LoraLayer)]
    try:
        with peft_model.disable_adapter():  # the adapters are still empty (meta) tensors
            for batch in batches:
                mask = batch["attention_mask"].bool()  # (b, L): real tokens only, as peft does
                peft_model(**batch)
    finally:
        for hook in hooks:
            hook.remove()
    return {name: principal_directions(torch.cat(xs), r) for name, xs in inputs.items()}


def make_variant(name: str, model: nn.Module, r: int = 8, alpha: float = 8.0,
                 targets: Sequence[str] = ("query", "value"), eva_data: list[dict] | None = None,
                 task_type: str | None = "SEQ_CLS") -> nn.Module:
    """Wrap `model` with peft for one variant; EVA's A comes from an SVD of layer inputs on eva_data."""
    from peft import get_peft_model, initialize_lora_eva_weights

    config = variant_config(name, r, alpha, targets, task_type)
    if name != "EVA":
        return get_peft_model(model, config)
    if not eva_data:
        raise ValueError("EVA needs eva_data: a list of unlabelled batches (see eva_batches)")
    # low_cpu_mem_usage leaves the adapters on the meta device until EVA fills them in
    peft_model = get_peft_model(model, config, low_cpu_mem_usage=True)
    state = eva_state_dict(peft_model, eva_data, r)
    initialize_lora_eva_weights(peft_model, eva_state_dict=state)
    return peft_model


def variant_groups(model: nn.Module, name: str, lr: float, ratio: float = LORAPLUS_RATIO) -> list[dict]:
    """AdamW parameter groups: LoRA+'s from peft (B and 1-d parameters at lr * ratio), else one group."""
    if name == "LoRA+":
        from peft.optimizers import create_loraplus_optimizer

        opt = create_loraplus_optimizer(model, torch.optim.AdamW, lr=lr, loraplus_lr_ratio=ratio)
        return [{k: v for k, v in g.items() if k in ("params", "lr", "weight_decay")}
                for g in opt.param_groups if g["params"]]
    return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]


def peak_step_bytes(model: nn.Module, inputs: tuple, loss_fn: Callable, optimizer) -> int:
    """Peak bytes of one training step: max_memory_allocated on CUDA, the profiler's timeline on CPU.

    Both count everything allocated on the device (weights, inputs, gradients, optimizer state,
    activations, temporaries) at its highest point during the step.
    """
    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        out = model(*inputs)
        loss_fn(out).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    return memory_timeline(model, inputs, loss_fn, optimizer, steps=1).peak()


@dataclass(frozen=True)
class VariantResult:
    """One variant on the task: trainable parameters, step time, peak bytes, test accuracy per seed."""

    name: str
    trainable: int
    step_seconds: float  # median of timed steps (interleaved with the other variants)
    peak_bytes: int  # one training step, the device's peak
    accuracies: tuple[float, ...]  # test accuracy, one per seed
    histories: tuple = field(default=(), repr=False)  # lorakit.History per seed

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def interval(self) -> tuple[float, float]:
        """mean ± t · sd / sqrt(n): a 95% interval over seeds (t from Student's table; n >= 2)."""
        n = len(self.accuracies)
        if n < 2:
            return (self.mean, self.mean)
        t = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}.get(n, 2.571)
        half = t * statistics.stdev(self.accuracies) / n ** 0.5
        return (self.mean - half, self.mean + half)


def results_frame(results: Sequence[VariantResult], seconds: bool = True):
    """A pandas DataFrame, one row per variant (seconds=False drops the varying time column)."""
    import pandas as pd

    rows = []
    for res in results:
        lo, hi = res.interval
        row = {"variant": res.name, "trainable": res.trainable, "peak MiB": res.peak_bytes / 2**20,
               "step ms": 1000 * res.step_seconds, "test acc": res.mean,
               "min": min(res.accuracies), "max": max(res.accuracies), "95% lo": lo, "95% hi": hi}
        if not seconds:
            row.pop("step ms")
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant")
