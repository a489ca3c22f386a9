"""Device choice, seeding and the scale preset."""
import random

import numpy as np
import pytest
import torch

from lorakit import pick_device, scale, seed_everything


def test_seed_everything_repeats_all_generators():
    seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(7)
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])


def test_pick_device_is_usable():
    device = pick_device()
    assert torch.ones(1, device=device).device.type == device.type


@pytest.mark.parametrize("value,expected", [("ci", "ci"), ("full", "full"), (" FULL ", "full")])
def test_scale_from_env(monkeypatch, value, expected):
    monkeypatch.setenv("LORAKIT_SCALE", value)
    assert scale() == expected


def test_scale_rejects_unknown(monkeypatch):
    monkeypatch.setenv("LORAKIT_SCALE", "huge")
    with pytest.raises(ValueError, match="LORAKIT_SCALE"):
        scale()


def test_pick_device_order(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device().type == "cpu"


@pytest.mark.parametrize("cuda,expected", [(True, "full"), (False, "ci")])
def test_scale_default_both_ways(monkeypatch, cuda, expected):
    monkeypatch.delenv("LORAKIT_SCALE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert scale() == expected
