"""lorakit.nf4 against bitsandbytes (codes, scales, dequantisation, bytes) and hand counts."""
import bitsandbytes as bnb
import bitsandbytes.functional as bnb_f
import pytest
import torch
from torch import nn

from lorakit import nf4


@pytest.fixture
def weight() -> torch.Tensor:
    return torch.randn(256, 384, generator=torch.Generator().manual_seed(0)) * 0.05


def test_levels_equal_bitsandbytes_table():
    # Codes 0..15 (four times: one block of 64), scale 1: bitsandbytes' dequantisation of codes 0..15 gives its table.
    packed = torch.tensor([(2 * i << 4) | (2 * i + 1) for i in range(8)] * 4, dtype=torch.uint8)
    state = bnb_f.QuantState(absmax=torch.ones(1), shape=torch.Size([64]), code=None, blocksize=64,
                             quant_type="nf4", dtype=torch.float32)
    table = bnb_f.dequantize_4bit(packed, state).reshape(-1)[:16]
    assert torch.equal(table, nf4.nf4_levels())
    assert nf4.nf4_levels().numel() == 16 and nf4.nf4_levels()[7] == 0


def test_codes_scales_and_dequantisation_bit_for_bit(weight):
    q = nf4.quantize_nf4(weight)
    packed, state = bnb_f.quantize_4bit(weight, blocksize=64, quant_type="nf4")
    assert torch.equal(q.packed, packed.reshape(-1))
    assert torch.equal(q.absmax, state.absmax)
    assert torch.equal(nf4.dequantize_nf4(q), bnb_f.dequantize_4bit(packed, state))


def test_codes_unpack_high_nibble_first():
    q = nf4.NF4Weight(torch.tensor([0x1F], dtype=torch.uint8), torch.ones(1), (2,), 2)
    assert q.codes.tolist() == [1, 15]


def test_nf4_bytes_hand_counts():
    n = 1024 * 1024
    assert nf4.nf4_bytes(n, double_quant=False) == n // 2 + 4 * (n // 64) == 589_824
    assert nf4.nf4_bytes(n) == n // 2 + n // 64 + 4 * (n // 64 // 256) + 4 == 540_932


@pytest.mark.parametrize("double_quant", [False, True])
def test_nf4_bytes_equal_a_bitsandbytes_layer(double_quant, weight):
    layer = bnb.nn.Linear4bit(384, 256, bias=False, compress_statistics=double_quant, quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4",
                                     compress_statistics=double_quant)
    layer = layer.to("cpu")  # quantises
    assert nf4.stored_bytes(layer) == nf4.nf4_bytes(weight.numel(), double_quant=double_quant)


def test_count_4bit_bytes_keeps_embeddings_norms_biases_and_head():
    model = nn.Sequential()
    model.add_module("embed", nn.Embedding(10, 8))
    model.add_module("proj", nn.Linear(8, 128))
    model.add_module("norm", nn.LayerNorm(128))
    model.add_module("classifier", nn.Linear(128, 2))
    counted = nf4.count_4bit_bytes(model, kept_bytes_per_param=4)
    assert counted.quantized_params == 8 * 128
    assert counted.kept_params == 80 + 128 + 2 * 128 + 128 * 2 + 2
    assert counted.quantized_bytes == nf4.nf4_bytes(1024)
    assert counted.fp32_bytes == 4 * sum(p.numel() for p in model.parameters())


def test_peak_memory_counts_a_4bit_weight_with_its_scales(weight):
    """peak_memory's resident bytes of a 4-bit layer = the layer's stored bytes (codes and scales) + the input."""
    from lorakit import peak_memory

    layer = bnb.nn.Linear4bit(384, 256, bias=False, compress_statistics=True, quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4", compress_statistics=True)
    layer = layer.to("cpu")
    x = torch.randn(4, 384, requires_grad=True)
    result = peak_memory(layer, x, lambda out: out.sum())
    assert result.resident == nf4.nf4_bytes(weight.numel()) + x.numel() * 4
    assert nf4.quant_state_tensors(torch.zeros(3)) == []


def test_a_4bit_minilm_body_in_the_mean_pooled_classifier_gets_peft_bitsandbytes_lora_layers():
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora.bnb import Linear4bit as LoraLinear4bit
    from transformers import BertModel, BitsAndBytesConfig

    from lorakit.pretrained import MeanPooledClassifier, minilm_dir

    body = BertModel.from_pretrained(minilm_dir(), local_files_only=True, add_pooling_layer=False,
                                     device_map={"": "cpu"}, quantization_config=BitsAndBytesConfig(
                                         load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                         bnb_4bit_compute_dtype=torch.float32))
    model = MeanPooledClassifier(body, 2)
    assert model.is_loaded_in_4bit and not model.is_loaded_in_8bit
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["query"], modules_to_save=["classifier"]))
    query = peft_model.base_model.model.bert.encoder.layer[0].attention.self.query
    assert isinstance(query, LoraLinear4bit)  # its merge re-quantises; a plain lora.Linear's would fail
