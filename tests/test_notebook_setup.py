"""Every chapter notebook opens on Colab ready to run: its set-up cell and metadata agree with the repository.

The set-up cell is a notebook's first code cell (a title in markdown may come before it).
The set-up cell is executed here (with subprocess stubbed, so nothing is installed) once as on Colab, with a
`google.colab` module in sys.modules, and once as anywhere else; what it would install is then compared with
_config.yml (the repository URL) and requirements.txt (the peft pin).
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import types

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
PEFT_PIN = re.search(r"^peft==(\S+)\s*$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
NEVER_INSTALLED = {"torch", "numpy"}  # Colab's own builds are already imported; reinstalling breaks them
# An install command written in a cell: pip / %pip / !pip / conda / mamba / uv, or pip's "install" in a list.
INSTALL = re.compile(r"(\b(pip3?|conda|mamba|uv)\b.*\binstall\b)|[\"']install[\"']")


def cells(path: pathlib.Path, kind: str = "code") -> list[str]:
    """The sources of a notebook's cells of one kind, in order."""
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"] if c["cell_type"] == kind]


def run_setup_cell(source: str, on_colab: bool, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Execute a set-up cell with subprocess.run recorded (nothing runs); return the commands it ran."""
    calls: list[list[str]] = []

    def record(cmd, *args, **kwargs):
        assert kwargs.get("check") is True, "the install must fail loudly: subprocess.run(..., check=True)"
        calls.append([str(c) for c in cmd])
        return subprocess.CompletedProcess(cmd, 0)

    def refuse(*args, **kwargs):
        raise AssertionError("the set-up cell may run commands only through subprocess.run")

    monkeypatch.setattr(subprocess, "run", record)
    for name in ("call", "check_call", "check_output", "Popen"):
        monkeypatch.setattr(subprocess, name, refuse)
    monkeypatch.setattr(os, "system", refuse)
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "<set-up cell>", "exec"), {"__name__": "__main__"})
    return calls


def requirements(command: list[str]) -> list[Requirement]:
    """The packages a `python -m pip install ...` command asks for (its options left out)."""
    assert command[:4] == [sys.executable, "-m", "pip", "install"], command
    return [Requirement(arg) for arg in command[4:] if not arg.startswith("-")]


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_on_colab_installs_lorakit_and_pinned_peft(path, monkeypatch) -> None:
    calls = run_setup_cell(cells(path)[0], on_colab=True, monkeypatch=monkeypatch)
    assert len(calls) == 1, f"expected one pip install, got {calls}"
    wanted = {r.name.lower(): r for r in requirements(calls[0])}
    assert set(wanted) == {"peft", "lorakit"}, f"installs {sorted(wanted)}, want peft and lorakit only"
    assert str(wanted["peft"].specifier) == f"=={PEFT_PIN}", "peft pin differs from requirements.txt"
    assert wanted["lorakit"].url == f"git+{REPO_URL}", "lorakit URL differs from _config.yml repository.url"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_does_nothing_elsewhere(path, monkeypatch) -> None:
    calls = run_setup_cell(cells(path)[0], on_colab=False, monkeypatch=monkeypatch)
    assert calls == [], f"outside Colab the set-up cell ran {calls}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_installs_torch_or_numpy(path, monkeypatch) -> None:
    setup, *rest = cells(path)
    on_colab = requirements(run_setup_cell(setup, on_colab=True, monkeypatch=monkeypatch)[0])
    assert not {r.name.lower() for r in on_colab} & NEVER_INSTALLED, f"the set-up cell installs {on_colab}"
    # Only the set-up cell installs anything, so no other cell can bring in torch or numpy either.
    installing = [src.splitlines()[0] for src in rest if any(INSTALL.search(l) for l in src.splitlines())]
    assert not installing, f"cells after the set-up cell install packages: {installing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_metadata_asks_colab_for_a_gpu(path) -> None:
    meta = json.loads(path.read_text())["metadata"]
    assert meta.get("accelerator") == "GPU", "metadata.accelerator must be GPU"
    assert meta.get("colab", {}).get("gpuType"), "colab.gpuType (e.g. T4) is missing"


def test_every_notebook_has_the_same_setup_cell() -> None:
    firsts = {path.name: cells(path)[0] for path in NOTEBOOKS}
    assert len(set(firsts.values())) <= 1, f"set-up cells differ: {sorted(firsts)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_raises_on_purpose(path) -> None:
    # "Run all" on Colab and in Jupyter stops at the first error, whatever a cell's tags say: a lesson that
    # shows an error catches it and prints it, so no cell may be marked as raising, and none may be stored
    # with an error output.
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        assert "raises-exception" not in cell.get("metadata", {}).get("tags", []), f"cell {i} has raises-exception"
        assert "NBVAL_RAISES_EXCEPTION" not in source, f"cell {i} is marked NBVAL_RAISES_EXCEPTION"
        assert not any(o.get("output_type") == "error" for o in cell.get("outputs", [])), f"cell {i} stored an error"
