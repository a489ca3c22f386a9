"""lorakit: the small helper package behind the LoRA book."""
from .flops import FlopCount, count_flops
from .layers import LoRALinear, add_lora
from .params import ParamCount, count_parameters, lora_param_count
from .runtime import pick_device, scale, seed_everything

__version__ = "0.1.0"
from .models import (
    LoRABranch, LoRADecoderLayer, LoRATower, SeedTransformer, SimpleMLP, TransformerConfig,
    seed000_mlp, train_only,
)
from . import plots
