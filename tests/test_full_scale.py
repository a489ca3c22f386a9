"""The full scale runs: every chapter, top to bottom, at LORAKIT_SCALE=full, on this CPU, in smoke mode.

Readers on a Colab GPU run every chapter at the "full" scale (the source documents' own sizes). This test
proves those code paths on the CPU: each notebook runs in a fresh kernel with LORAKIT_SCALE=full and
LORAKIT_SMOKE=1, "Run all" semantics (the first error fails it). Smoke mode keeps the full shapes and the
exact counts (parameters, FLOPs, bytes) and cuts what only repeats: timed steps and calls to one, training
to a few batches an epoch, sweeps to their first points (`lorakit.smoke()`, `lorakit.fewer()`).

What it leaves to a GPU: the full number of repeats and epochs, so every time, accuracy and
learning curve at full; asserts that need real repeats (timing orders, accuracies) are skipped in smoke
mode by the chapters themselves; CUDA-only paths (CUDA peaks, 1-byte dropout masks, bf16 kernels,
NCCL) run only where a GPU is. Measured on a 2-core CPU: chapters 1-5 and 9 take 12 to 40 s each, the
fine-tuning chapter 6 (MiniLM on all 8,087 training snippets, two batches an epoch) about 50 s; every
kernel's peak resident memory stays under 8 GB.
"""
from __future__ import annotations

import os
import pathlib
import resource
import time

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SECONDS = 120  # one chapter at full in smoke mode (the slowest, fine-tuning: about 50 s on 2 cores)
PEAK_BYTES = 8 * 2**30


def kernels_peak_rss() -> int:
    """The largest resident set (bytes) of any child process this test process has waited for."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux reports KiB


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_runs_at_full_scale(path, monkeypatch) -> None:
    monkeypatch.setenv("LORAKIT_SCALE", "full")
    monkeypatch.setenv("LORAKIT_SMOKE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # "Run all": any error fails, whatever the tags
        cell.metadata["tags"] = [t for t in cell.metadata.get("tags", []) if t != "raises-exception"]
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.1f} s at full (smoke)")
    assert seconds < SECONDS, f"{path.name} took {seconds:.0f} s at full in smoke mode (budget {SECONDS} s)"
    assert kernels_peak_rss() < PEAK_BYTES, f"a kernel peaked at {kernels_peak_rss() / 2**30:.1f} GiB"
