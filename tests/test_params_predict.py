"""predict_lora_params against peft's own count, on small models built for real and big ones on meta."""
import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from lorakit import SimpleMLP, lora_param_count, seed000_mlp
from lorakit.architectures import bert_classifier, gpt3_175b, llama_7b
from lorakit.params import predict_lora_params

# peft 0.21.2 reads transformers 5's deprecated `is_gradient_checkpointing`: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


def peft_trainable(model, **config) -> int:
    """Trainable parameters after get_peft_model, as peft itself reports them."""
    return get_peft_model(model, LoraConfig(**config)).get_nb_trainable_parameters()[0]


@pytest.mark.parametrize("targets, r, expected", [
    (["fc1"], 4, 4 * (10 + 20)),  # seed 003: 120
    (["fc1", "fc2"], 4, 4 * (10 + 20) + 4 * (20 + 2)),  # seed 003: 208
    (["fc2"], 1, 22),
])
def test_simple_mlp_matches_formula_and_peft(targets, r, expected):
    assert predict_lora_params(SimpleMLP(), targets, r).trainable == expected
    assert peft_trainable(SimpleMLP(), r=r, target_modules=targets) == expected


def test_seed000_target_zero_matches_only_the_first_linear():
    pred = predict_lora_params(seed000_mlp(), ["0"], 2)
    assert [t.name for t in pred.targets] == ["0"]
    assert pred.trainable == 60 == peft_trainable(seed000_mlp(), r=2, target_modules=["0"])


def test_rank_pattern_gives_layers_different_ranks():
    pred = predict_lora_params(SimpleMLP(), ["fc1", "fc2"], 4, rank_pattern={"fc2": 2})
    assert [t.r for t in pred.targets] == [4, 2]
    assert pred.trainable == 4 * 30 + 2 * 22
    assert pred.trainable == peft_trainable(SimpleMLP(), r=4, target_modules=["fc1", "fc2"],
                                            rank_pattern={"fc2": 2})


def test_regex_string_target_is_fullmatched_like_peft():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4), nn.Linear(4, 4))
    pred = predict_lora_params(model, r"[23]", 3)
    assert [t.name for t in pred.targets] == ["2", "3"]
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4), nn.Linear(4, 4))
    assert pred.trainable == peft_trainable(model, r=3, target_modules=r"[23]")


def test_embedding_and_conv1d_targets_match_peft():
    config = GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=100, n_positions=16)
    pred = predict_lora_params(GPT2LMHeadModel(config), ["c_attn", "wte"], 4)
    # c_attn is Conv1D 32 -> 96 (q, k, v fused); wte is Embedding(100, 32)
    assert pred.trainable == 2 * lora_param_count(32, 96, 4) + lora_param_count(100, 32, 4)
    got = peft_trainable(GPT2LMHeadModel(config), r=4, target_modules=["c_attn", "wte"], fan_in_fan_out=True)
    assert pred.trainable == got


def test_bert_tiny_seq_cls_counts_the_classifier_copy():
    torch.manual_seed(0)
    pred = predict_lora_params(bert_classifier("tiny"), ["query", "value"], 8,
                               modules_to_save=["classifier", "score"])
    assert pred.lora == 2 * 2 * lora_param_count(128, 128, 8)  # 2 layers x (query, value)
    assert dict(pred.saved) == {"classifier": 128 * 2 + 2}
    got = peft_trainable(bert_classifier("tiny"), task_type="SEQ_CLS", r=8, target_modules=["query", "value"])
    assert pred.trainable == got == 8_450


@pytest.mark.parametrize("build, targets, r", [
    (lambda: bert_classifier("base", device="meta"), ["query", "value"], 8),
    (llama_7b, ["q_proj", "v_proj"], 8),
    (lambda: gpt3_175b("separate"), ["q_proj", "v_proj"], 1),
    (lambda: gpt3_175b("separate"), ["q_proj", "v_proj"], 8),
])
def test_big_models_on_meta_match_peft(build, targets, r):
    pred = predict_lora_params(build(), targets, r)
    assert pred.trainable == peft_trainable(build(), r=r, target_modules=targets)


def test_lora_paper_gpt3_counts():
    # Hu et al. 2021, Table 4: 4.7M (r_q = r_v = 1) and 37.7M (r_q = r_v = 8).
    model = gpt3_175b("separate")
    assert predict_lora_params(model, ["q_proj", "v_proj"], 1).trainable == 2 * 96 * 2 * 12288
    assert round(predict_lora_params(model, ["q_proj", "v_proj"], 8).trainable / 1e6, 1) == 37.7


def test_modules_to_save_excludes_lora_inside_it():
    model = nn.Sequential()
    model.add_module("body", nn.Linear(4, 4))
    model.add_module("head", nn.Sequential(nn.Linear(4, 4)))
    pred = predict_lora_params(model, r"body|head\.0", 2, modules_to_save=["head"])
    assert [t.name for t in pred.targets] == ["body"] and dict(pred.saved) == {"head": 20}


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="match no module"):
        predict_lora_params(SimpleMLP(), ["fc3"], 4)
    with pytest.raises(ValueError, match="positive integer"):
        predict_lora_params(SimpleMLP(), ["fc1"], 0)
    with pytest.raises(ValueError, match="empty"):
        predict_lora_params(SimpleMLP(), [], 4)
    with pytest.raises(ValueError, match="ReLU"):
        predict_lora_params(SimpleMLP(), ["relu"], 4)
    with pytest.raises(ValueError, match="all-linear"):
        predict_lora_params(SimpleMLP(), "all-linear", 4)


def test_prediction_table_and_repr():
    pred = predict_lora_params(SimpleMLP(), ["fc1", "fc2"], 4)
    frame = pred.to_frame()
    assert list(frame["params"]) == [120, 88] and frame["params"].sum() == pred.trainable
    assert repr(pred) == "LoRAPrediction(modules=2, lora=208, saved=0, trainable=208)"
