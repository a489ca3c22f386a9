"""LoRA's relatives in peft, side by side: one LoraConfig per variant, and its optimizer groups.

The variants differ in three places only: the LoraConfig (DoRA, rsLoRA, the initialisations PiSSA,
OLoRA, EVA), one extra step after wrapping (EVA's SVD of layer inputs), and the optimizer's
parameter groups (LoRA+). `make_variant` and `variant_groups` cover all three.
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ._args import check_int
from .baselines import t_interval

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
LORAPLUS_RATIO = 16.0  # lr of B / lr of A: a hyperparameter (the LoRA+ authors ask only for a ratio above 1)


def variant_config(name: str, r: int = 8, alpha: float = 8.0, targets: Sequence[str] = ("query", "value"),
                   modules_to_save: Sequence[str] | None = ("classifier",)):
    """peft's LoraConfig for one of VARIANTS (EVA with rho=1: every layer keeps rank r); the new head
    (`modules_to_save`) trains in full, as in the fine-tuning chapter."""
    from peft import EvaConfig, LoraConfig

    if name not in VARIANTS:
        raise ValueError(f"name must be one of {list(VARIANTS)}, got {name!r}")
    check_int("r", r)
    extra = dict(VARIANTS[name])
    if name == "EVA":
        extra["eva_config"] = EvaConfig(rho=1.0)
    return LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets),
                      modules_to_save=list(modules_to_save) if modules_to_save else None, **extra)


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
                 modules_to_save: Sequence[str] | None = ("classifier",)) -> nn.Module:
    """Wrap `model` with peft for one variant; EVA's A comes from an SVD of layer inputs on eva_data."""
    from peft import get_peft_model, initialize_lora_eva_weights

    config = variant_config(name, r, alpha, targets, modules_to_save)
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
        """A Student-t 95% interval of the mean over seeds (the mean itself with one seed)."""
        n = len(self.accuracies)
        if n < 2:
            return (self.mean, self.mean)
        _, low, high = t_interval(self.accuracies)
        return (low, high)


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
