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
from .memory import MemoryReport, measure_memory
from .params import LoRAPrediction, LoRATarget, predict_lora_params
from .summary import ModelSummary, ParamGroups, SafetensorsLayout, safetensors_layout, summarize, where_parameters_live
from . import architectures
from .summary import torchsummary_count
from .inventory import ParamRow, ParamTable, parameter_table
from .source import PEFT_LORA_TOUR, Excerpt, ExcerptSpec, excerpt, peft_excerpt
from .flops import FlopSplit, OpCount, count_ops, split_flops
from .timing import StepTimes, Timing, time_calls, time_step, time_steps
from .trace import read_phase_durations, read_trace_steps
from .memory import SavedTensor, SavedTensors, saved_tensors
from .timeline import MemoryTimeline, memory_timeline
from .caching import BackboneCache, CachedTower, cache_backbone
from .recompute import Checkpointed, checkpoint_layers
from .memory import korthikanti_layer_bytes, predict_layer_activations
from .data import DigitsTask, Split, digits_task, load_digit_rows
from .training import EpochRecord, Evaluation, History, evaluate, logits_of, predict, train
from .training import mean_history
