"""lorakit: the small helper package behind the LoRA book.

One concept per module; every name below is importable from `lorakit` itself.
"""
from . import architectures, plots
# LoRA itself
from .layers import LoRALinear, add_lora
from .models import (
    LoRABranch, LoRADecoderLayer, LoRATower, SeedTransformer, SimpleMLP, TransformerConfig,
    seed000_mlp, train_only,
)
from .source import PEFT_LORA_TOUR, Excerpt, ExcerptSpec, excerpt, peft_excerpt
# Counting parameters
from .params import (
    LoRAPrediction, LoRATarget, ParamCount, count_parameters, lora_param_count, predict_lora_params,
)
from .inventory import ParamRow, ParamTable, parameter_table
from .summary import (
    ModelSummary, ParamGroups, SafetensorsLayout, safetensors_layout, summarize, torchsummary_count,
    where_parameters_live,
)
# Time and FLOPs
from .flops import FlopCount, FlopSplit, OpCount, count_flops, count_ops, split_flops
from .timing import StepTimes, Timing, time_calls, time_step, time_steps
from .trace import read_phase_durations, read_trace_steps
# Memory
from .memory import (
    MemoryReport, SavedTensor, SavedTensors, korthikanti_layer_bytes, measure_memory,
    predict_layer_activations, saved_tensors,
)
from .peak import PeakMemory, peak_memory
from .timeline import MemoryTimeline, memory_timeline
from .caching import BackboneCache, CachedTower, cache_backbone
from .recompute import Checkpointed, checkpoint_layers
# Fine-tuning
from .data import DigitsTask, Split, digits_task, half_indices, load_digit_rows
from .training import EpochRecord, Evaluation, History, evaluate, logits_of, mean_history, predict, progress, train
from .sentiment import SentimentTask, TextSplit, movie_reviews
from .text import Encoded, encode
from .protocol import Protocol, protocol
from . import baselines, pretrained, variants
# A 4-bit base (QLoRA): NF4 from scratch and exact byte counts
from .nf4 import (
    ModelBytes, NF4Weight, count_4bit_bytes, dequantize_nf4, nf4_bytes, nf4_levels, quantize_nf4, stored_bytes,
)
# Several devices
from .launcher import RankError, free_port, launch
from .distributed import (
    CommRecord, Stack, StackSpec, build_stack, ddp_comm_records, ddp_lesson, ddp_train_adapter,
    fail_on_rank, fsdp1_on_cpu, predict_buckets, ranks_hello, train_adapter, trainable_bytes,
)
from .sharding import (
    AdapterRoundTrip, Footprint, adapter_names, footprint, fsdp2_adapter_roundtrip, fsdp2_footprints, fsdp_lesson,
    shard_stack, step_footprint,
)
# Where and how big to run
from .runtime import fewer, pick_device, scale, seed_everything, smoke

__version__ = "0.1.0"
