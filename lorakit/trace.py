"""Reading per-phase times from a torch.profiler Chrome trace whose phases carry record_function labels.

Seed 002 labels each step's phases "## forward ##", "## backward ##", "## optimizer ##" and
reads the trace's start timestamps; this reads each labelled range's own duration instead, so
no closing "## end ##" marker is needed and gaps between phases are not counted.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ._args import check_int
from .timing import PHASE_LABELS, StepTimes


def read_phase_durations(
    trace: str | Path | dict, labels: Sequence[str] = PHASE_LABELS
) -> dict[str, tuple[float, ...]]:
    """Seconds of every range named in `labels`, in start order, from a Chrome trace (path or loaded dict).

    Only host-side ranges (category "user_annotation") count; on CUDA the profiler also
    writes a "gpu_user_annotation" copy of each range, which is left out.
    """
    data = trace if isinstance(trace, dict) else json.loads(Path(trace).read_text())
    events = data.get("traceEvents", []) if isinstance(data, dict) else data
    found: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == "user_annotation" and e.get("name") in found:
            found[e["name"]].append((float(e["ts"]), float(e["dur"]) * 1e-6))  # ts, dur in microseconds
    return {label: tuple(d for _, d in sorted(spans)) for label, spans in found.items()}


def read_trace_steps(
    trace: str | Path | dict, skip: int = 0, labels: Sequence[str] = PHASE_LABELS
) -> StepTimes:
    """StepTimes from a trace of labelled steps, dropping the first `skip` (warm-up) steps.

    `labels` name the forward, backward and optimizer ranges, in that order.
    """
    if len(labels) != 3:
        raise ValueError(f"labels must name the forward, backward and optimizer ranges, got {list(labels)}")
    check_int("skip", skip, minimum=0)
    durations = read_phase_durations(trace, labels)
    counts = {label: len(d) for label, d in durations.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"the trace has unequal numbers of phase ranges: {counts}")
    n = next(iter(counts.values()))
    if n <= skip:
        raise ValueError(f"the trace has {n} labelled steps; nothing left after skipping {skip}")
    forward, backward, optimizer = (durations[label][skip:] for label in labels)
    return StepTimes(forward, backward, optimizer)
