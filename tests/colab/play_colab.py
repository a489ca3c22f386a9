"""Play Colab: run a chapter the way a reader's Colab runtime does, from the repository, with nothing else.

Usage (from the repository root, with Python 3.11 and access to the package index):

    python tests/colab/play_colab.py [NOTEBOOK ...] [--keep]

NOTEBOOK defaults to notebooks/01_math_of_lora.ipynb. What it does:
  1. snapshots the working tree (tracked files and untracked ones git does not ignore) into a new local git
     repository: what GitHub would serve after a push;
  2. makes a clean virtual environment with only torch==2.13.0 (Colab's preinstalled torch) and the kernel
     machinery (ipykernel, nbclient);
  3. runs each notebook in a fresh kernel in an empty folder (Colab's /content), with a stand-in `google.colab`
     package imported first and the set-up cell's REPO_URL pointed at git+file:// of the snapshot, so the set-up
     cell installs lorakit and the pinned peft from the repository exactly as on Colab;
  4. checks every cell ran, lorakit was imported from the installed package (not the checkout), peft is the
     pinned version and torch was left as it was.
It prints how long each step took and ends with 'N passed, N failed'.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TORCH = "torch==2.13.0"  # Colab's own torch stands in as this: the set-up cell must leave it alone
KERNEL = ["ipykernel", "nbclient"]

# Run inside the clean venv: executes one notebook with nbclient, writes it back executed.
RUNNER = r"""
import sys, nbformat
from nbclient import NotebookClient
src, dst, cwd = sys.argv[1:4]
nb = nbformat.read(src, as_version=4)
client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": cwd}})
try:
    client.execute()
finally:
    nbformat.write(nb, dst)
"""

# A stand-in google.colab package: importable like the real one (libraries such as accelerate look it up
# with importlib.util.find_spec, which fails on a bare module object put in sys.modules).
FAKE_COLAB = """# Added by play_colab.py: Colab imports google.colab before any cell runs.
import sys
sys.path.insert(0, {site!r})
import google.colab"""

REPORT = r"""# Added by play_colab.py: where everything came from.
import importlib.metadata, json, sys, torch, lorakit
print("PLAY_COLAB " + json.dumps({"python": sys.executable, "torch": importlib.metadata.version("torch"),
      "peft": importlib.metadata.version("peft"), "lorakit": lorakit.__file__}))"""


def run(cmd: list[str], **kwargs) -> None:
    """Run a command; on failure show its output and stop."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")


def snapshot(dest: pathlib.Path) -> str:
    """Copy the working tree into a one-commit git repository on branch main; return its URL for git+."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    for rel in filter(None, listed.split("\0")):
        src = REPO_ROOT / rel
        if src.is_file():  # a tracked file deleted in the working tree is left out, as a push would
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-c", "user.name=play-colab", "-c", "user.email=play-colab@localhost", "-c",
           "init.defaultBranch=main"]
    run([*git, "init", "-q"], cwd=dest)
    run([*git, "add", "-A"], cwd=dest)
    run([*git, "commit", "-q", "-m", "snapshot"], cwd=dest)
    return f"file://localhost{dest}"  # pip 23 (Python 3.11's ensurepip) rejects git+file:/// with no host


def colab_copy(notebook: pathlib.Path, repo_url: str, local_url: str, dest: pathlib.Path,
               site: pathlib.Path) -> None:
    """The notebook as Colab would run it here: google.colab (from site) first, REPO_URL local, a report last."""
    nb = json.loads(notebook.read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")  # the set-up cell
    setup = "".join(first["source"])
    line = f'REPO_URL = "{repo_url}"'
    if line not in setup:
        raise ValueError(f"the first code cell does not set {line}")
    first["source"] = setup.replace(line, f'REPO_URL = "{local_url}"')
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": []}
    fake = {**cell, "source": FAKE_COLAB.format(site=str(site))}
    nb["cells"] = [fake, *nb["cells"], {**cell, "source": REPORT}]
    dest.write_text(json.dumps(nb))


def check(executed: pathlib.Path, venv: pathlib.Path, pinned_peft: str, torch_before: str) -> list[str]:
    """What went wrong in an executed copy (empty if nothing)."""
    nb = json.loads(executed.read_text())
    problems = [f"cell {i} did not run" for i, c in enumerate(nb["cells"])
                if c["cell_type"] == "code" and c.get("execution_count") is None]
    texts = ["".join(o.get("text", "")) for o in nb["cells"][-1].get("outputs", [])]
    found = re.search(r"PLAY_COLAB (\{.*\})", "".join(texts))
    if not found:
        return problems + ["the report cell printed nothing"]
    info = json.loads(found.group(1))
    if not info["python"].startswith(str(venv)):
        problems.append(f"the kernel ran {info['python']}, not the clean venv's python")
    if info["torch"] != torch_before:
        problems.append(f"the set-up cell changed torch: {torch_before} -> {info['torch']}")
    if info["peft"] != pinned_peft:
        problems.append(f"peft {info['peft']}, pinned {pinned_peft}")
    if not info["lorakit"].startswith(str(venv)):
        problems.append(f"lorakit imported from {info['lorakit']}, not installed from the repository")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", default=["notebooks/01_math_of_lora.ipynb"])
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed) for a look")
    parser.add_argument("--preinstall", action="append", default=[], metavar="PKG",
                        help="also install PKG beside torch before the notebook runs, as Colab's image has more "
                             "(pandas, scikit-learn, ...); by default nothing else, so lorakit must bring the rest")
    args = parser.parse_args(argv)
    notebooks = [(REPO_ROOT / n).resolve() for n in args.notebooks]
    repo_url = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())["repository"]["url"]
    pinned = re.search(r"^peft==(\S+)", (REPO_ROOT / "requirements.txt").read_text(), re.M).group(1)

    work = pathlib.Path(tempfile.mkdtemp(prefix="play-colab-"))
    times: dict[str, float] = {}
    failed = 0
    try:
        start = time.perf_counter()
        local_url = snapshot(work / "repo")
        times["snapshot"] = time.perf_counter() - start

        start = time.perf_counter()
        venv = work / "venv"
        run([sys.executable, "-m", "venv", str(venv)])
        python = str(venv / "bin" / "python")
        run([python, "-m", "pip", "install", "-q", TORCH, *args.preinstall, *KERNEL])
        times["venv with torch"] = time.perf_counter() - start
        torch_before = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('torch'))"],
                                      capture_output=True, text=True, check=True).stdout.strip()

        # Colab's runtime: no LORAKIT_SCALE, no access to the checkout, a private Jupyter data folder
        # (so no kernel spec of this machine's is picked instead of the venv's own).
        env = {k: v for k, v in os.environ.items()
               if k not in ("LORAKIT_SCALE", "PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH")}
        env.update(JUPYTER_DATA_DIR=str(work / "jupyter"), JUPYTER_CONFIG_DIR=str(work / "jupyter"),
                   PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
        site = work / "colab_site"  # holds google/colab/__init__.py, outside the venv and the notebook's folder
        (site / "google" / "colab").mkdir(parents=True)
        stand_in = site / "google" / "colab" / "__init__.py"
        stand_in.write_text('"""Stand-in for the google.colab package of Colab."""\n')
        for notebook in notebooks:
            content = work / "content" / notebook.stem  # Colab's /content: an empty folder
            content.mkdir(parents=True)
            src, dst = content / notebook.name, work / f"{notebook.stem}.executed.ipynb"
            try:
                colab_copy(notebook, repo_url, local_url, src, site)
            except ValueError as err:
                failed += 1
                print(f"FAIL {notebook.name}\n    {err}")
                continue
            start = time.perf_counter()
            proc = subprocess.run([python, "-c", RUNNER, str(src), str(dst), str(content)],
                                  cwd=content, env=env, capture_output=True, text=True)
            times[notebook.name] = time.perf_counter() - start
            problems = (check(dst, venv, pinned, torch_before) if dst.exists()
                        else ["no executed notebook written"])
            if proc.returncode:
                problems.insert(0, "execution failed:\n" + proc.stderr[-4000:])
            failed += bool(problems)
            print(("FAIL " if problems else "PASS ") + notebook.name + "".join(f"\n    {p}" for p in problems))
    finally:
        for step, seconds in times.items():
            print(f"  {step}: {seconds:.0f} s")
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{len(notebooks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
