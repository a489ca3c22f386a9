"""The seed models: sizes by hand, PEFT variants start as the base model, the tower stays decoupled."""
import pytest
import torch

from lorakit import SeedTransformer, TransformerConfig, count_parameters, seed000_mlp, SimpleMLP, train_only


def test_seed_mlps_hand_counts():
    assert count_parameters(seed000_mlp()).total == 881
    assert count_parameters(SimpleMLP()).total == (10 * 20 + 20) + (20 * 2 + 2) == 262


def embedded_key(key):
    """decoder_layers.i.rest -> decoder_layers.i.base_layer.rest"""
    if not key.startswith("decoder_layers."):
        return key
    _, i, rest = key.split(".", 2)
    return f"decoder_layers.{i}.base_layer.{rest}"


@pytest.mark.parametrize("peft", ["embedded", "tower"])
def test_peft_variants_start_as_base_and_train_only_lora(peft):
    cfg = TransformerConfig(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=3,
                            dim_feedforward=32, dropout=0.0, seq_len=5)
    torch.manual_seed(0)
    base = SeedTransformer(cfg)
    torch.manual_seed(0)
    variant = SeedTransformer(cfg, peft=peft, r=2)
    state = base.state_dict()
    if peft == "embedded":  # the wrapped decoder layers sit one level down, as base_layer
        state = {embedded_key(k): v for k, v in state.items()}
    missing = variant.load_state_dict(state, strict=False)
    assert missing.unexpected_keys == []
    assert missing.missing_keys and all(".lora" in k or k.startswith("lora") for k in missing.missing_keys)
    src, tgt = cfg.inputs()
    torch.testing.assert_close(variant(src, tgt), base(src, tgt))  # B = 0 at init
    # Each of the 3 LoRA branches is (16 -> 2 -> 16): 2 * (16 + 16) parameters.
    assert count_parameters(variant).trainable == 3 * 2 * (16 + 16)


def test_tower_sends_no_gradient_into_backbone():
    cfg = TransformerConfig(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=2,
                            dim_feedforward=32, dropout=0.0, seq_len=4)
    model = SeedTransformer(cfg, peft="tower", r=2)
    captured = []
    model.decoder_layers[0].register_forward_hook(lambda m, i, o: captured.append(o))
    model(*cfg.inputs())
    assert not captured[0].requires_grad  # nothing upstream of the tower needs a gradient


def test_train_only_and_its_errors():
    model = train_only(SimpleMLP(), "fc2")
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc2.weight", "fc2.bias"]
    with pytest.raises(ValueError, match="'fc3' names no parameter"):
        train_only(SimpleMLP(), ["fc3"])
    with pytest.raises(ValueError, match="peft must be"):
        SeedTransformer(TransformerConfig(), peft="side")
