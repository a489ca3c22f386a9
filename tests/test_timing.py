"""time_step / time_steps / time_calls against known sleeps, call counts and numpy's quartiles."""
import time

import numpy as np
import pytest
import torch
from torch import nn

from lorakit import StepTimes, Timing, time_calls, time_step, time_steps

FWD, BWD, OPT = 0.004, 0.008, 0.002  # seconds each phase sleeps


class _SlowBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        time.sleep(BWD)
        return grad


class Sleepy(nn.Module):
    """A model whose forward and backward take a known time; it logs its calls."""

    def __init__(self, name="m", log=None):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))
        self.name, self.log = name, log if log is not None else []

    def forward(self, x):
        self.log.append(self.name)
        time.sleep(FWD)
        return _SlowBackward.apply(x * self.w)


class SleepyAdam(torch.optim.Adam):
    """Adam that also sleeps OPT seconds per step and counts its steps."""

    def __init__(self, params):
        super().__init__(params)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        time.sleep(OPT)
        return super().step(closure)


def test_phases_see_their_own_sleep():
    model = Sleepy()
    opt = SleepyAdam(model.parameters())
    t = time_step(model, torch.randn(3), lambda y: y.sum(), opt, repeats=5, warmup=2)
    assert opt.steps == 7  # warm-up steps run, then dropped
    assert t.repeats == 5 and isinstance(t, StepTimes)
    for measured, slept in ((t.forward, FWD), (t.backward, BWD), (t.optimizer, OPT)):
        assert slept <= measured < slept + 0.05
    assert t.total >= max(t.forward, t.backward, t.optimizer)


def test_cases_are_interleaved():
    log = []
    a, b = Sleepy("a", log), Sleepy("b", log)
    cases = {n: (m, torch.randn(3), lambda y: y.sum(), torch.optim.SGD(m.parameters(), lr=0.1))
             for n, m in (("a", a), ("b", b))}
    result = time_steps(cases, repeats=3, warmup=1)
    assert log == ["a", "b"] * 4
    assert set(result) == {"a", "b"}


def test_tuple_inputs_are_unpacked():
    model = nn.Bilinear(4, 5, 2)
    x = (torch.randn(3, 4), torch.randn(3, 5))
    t = time_step(model, x, lambda y: y.sum(), torch.optim.SGD(model.parameters(), lr=0.1), repeats=2, warmup=0)
    assert t.repeats == 2


def test_quartiles_match_numpy():
    runs = (5.0, 1.0, 4.0, 2.0, 3.0, 10.0)
    t = Timing(runs)
    assert t.median == pytest.approx(np.median(runs))
    assert t.q1 == pytest.approx(np.percentile(runs, 25))
    assert t.q3 == pytest.approx(np.percentile(runs, 75))


def test_total_is_median_of_step_sums():
    s = StepTimes((1.0, 2.0, 9.0), (1.0, 5.0, 0.0), (0.0, 0.0, 0.0))
    assert s.total == 7.0  # sums are 2, 7, 9
    assert s.phase_sum == 2.0 + 1.0 + 0.0
    assert s.to_frame().loc["total", "median_ms"] == pytest.approx(7000.0)


def test_time_calls_sees_sleep():
    out = time_calls({"nap": lambda: time.sleep(0.003)}, number=2, rounds=3)
    assert len(out["nap"].runs) == 3
    assert 0.003 <= out["nap"].median < 0.05


def test_bad_input():
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="repeats"):
        time_step(model, torch.randn(4, 3), lambda y: y.sum(), opt, repeats=0)
    with pytest.raises(ValueError, match="scalar"):
        time_step(model, torch.randn(4, 3), lambda y: y, opt, repeats=1, warmup=0)
    with pytest.raises(ValueError, match="case"):
        time_steps({"x": (model, torch.randn(4, 3))})
    with pytest.raises(ValueError, match="phase"):
        StepTimes((1.0,), (1.0,), (1.0,)).phase("update")
    with pytest.raises(ValueError, match="same number"):
        StepTimes((1.0,), (1.0, 2.0), (1.0,))


def test_time_calls_uses_the_given_clock():
    """A clock that advances 1 per read: every call then measures a whole number of ticks, not wall time."""
    import itertools

    from lorakit import time_calls

    ticks = itertools.count()
    out = time_calls({"noop": lambda: None}, number=4, rounds=3, clock=lambda: float(next(ticks)))
    assert len(out["noop"].runs) == 3 and all(r > 0 and (r * 4) == int(r * 4) for r in out["noop"].runs)
