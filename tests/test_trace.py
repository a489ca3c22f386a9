"""The trace reader against a hand-written trace and against time_step's own clock."""
import pytest
import torch

from lorakit import read_phase_durations, read_trace_steps, time_step

from test_timing import BWD, FWD, OPT, Sleepy, SleepyAdam


def _event(name, ts, dur, cat="user_annotation"):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "pid": 1, "tid": 1}


def test_hand_written_trace():
    events = [
        _event("## forward ##", 100.0, 10.0), _event("## backward ##", 111.0, 20.0),
        _event("## optimizer ##", 132.0, 5.0),
        _event("## forward ##", 0.0, 30.0), _event("## backward ##", 31.0, 40.0),  # earlier step, listed later
        _event("## optimizer ##", 72.0, 6.0),
        _event("## forward ##", 0.0, 999.0, cat="gpu_user_annotation"),  # the GPU copy is ignored
        _event("aten::mm", 1.0, 2.0, cat="cpu_op"),
    ]
    durations = read_phase_durations({"traceEvents": events})
    assert durations["## forward ##"] == pytest.approx((30e-6, 10e-6))
    steps = read_trace_steps({"traceEvents": events}, skip=1)
    assert steps.repeats == 1
    assert (steps.forward, steps.backward, steps.optimizer) == pytest.approx((10e-6, 20e-6, 5e-6))


def test_trace_agrees_with_direct_timing(tmp_path):
    model = Sleepy()
    opt = SleepyAdam(model.parameters())
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        direct = time_step(model, torch.randn(3), lambda y: y.sum(), opt, repeats=4, warmup=1)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    traced = read_trace_steps(path, skip=1)
    assert traced.repeats == 4
    for phase, slept in (("forward", FWD), ("backward", BWD), ("optimizer", OPT)):
        t = getattr(traced, phase)
        assert t >= slept
        # The same steps seen by two clocks: perf_counter around each range, and the range itself.
        assert t == pytest.approx(getattr(direct, phase), abs=2e-3)


def test_bad_traces():
    one = [_event("## forward ##", 0.0, 1.0), _event("## backward ##", 2.0, 1.0)]
    with pytest.raises(ValueError, match="unequal"):
        read_trace_steps({"traceEvents": one})
    full = one + [_event("## optimizer ##", 4.0, 1.0)]
    with pytest.raises(ValueError, match="nothing left"):
        read_trace_steps({"traceEvents": full}, skip=1)
    with pytest.raises(ValueError, match="labels"):
        read_trace_steps({"traceEvents": full}, labels=("a", "b"))
