"""Play Colab: run chapters the way a reader's Colab runtime does: Colab's own image, "Run all", nothing else.

Usage (from the repository root, with the project's venv active and access to the package index):

    python tests/colab/play_colab.py [NOTEBOOK ...] [--keep] [--rebuild] [--jobs N] [--smoke] [--scale full]

NOTEBOOK defaults to notebooks/01_math_of_lora.ipynb. What it does:
  1. snapshots the working tree (tracked files and untracked ones git does not ignore) into a new local git
     repository: what GitHub would serve after a push;
  2. makes Colab's image: a virtual environment on the Python version that tests/colab/colab_image.txt records
     (found under pyenv or on PATH), with exactly the packages and versions that file records (Colab's torch,
     transformers, numpy, the peft it preinstalls, ...), plus the kernel machinery. That venv is built once per
     machine and cached, keyed by the file's hash, in ~/.cache/lora-book (or $LORA_BOOK_CACHE); each run works
     on a hard-linked copy of it, so the cached image stays as recorded;
  3. runs each notebook in a fresh kernel in an empty folder (Colab's /content), with a stand-in `google.colab`
     package imported first and the set-up cell's REPO_URL pointed at git+file:// of the snapshot, so the set-up
     cell installs lorakit and the pinned peft from the repository exactly as on Colab. "Run all" semantics:
     the first error stops the notebook, whatever its cells' tags say (a `raises-exception` tag is removed
     before the run, as Colab and Jupyter ignore it);
  4. checks every cell ran, lorakit was imported from the installed package (not the checkout), peft is the
     pinned version, torch and numpy were left as the image had them, and the kernel's peak resident memory
     stayed under 8 GiB.
It prints how long each step took and each kernel's peak memory, and ends with 'N passed, N failed'.

With `--scale full --smoke` (what CI runs) it is the full-scale CPU test: every chapter at LORAKIT_SCALE=full,
the scale a Colab GPU runtime picks, in Colab's own package versions, on this machine's CPU. Smoke mode keeps
the full shapes and the exact counts (parameters, FLOPs, bytes) and cuts what only repeats: timed steps and
calls to one, training to a few batches an epoch, sweeps to their first points (`lorakit.smoke()`,
`lorakit.fewer()`). What it leaves to a GPU: the full number of repeats and epochs, so every time, accuracy
and learning curve at full; asserts that need real repeats (timing orders, accuracies) are skipped in smoke
mode by the chapters themselves; CUDA-only paths (CUDA peaks, 1-byte dropout masks, bf16 kernels, paged
optimizers, NCCL) run only where a GPU is. The `ci` scale's outputs are checked by nbval (`pytest`) in the
project's own environment.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
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
IMAGE_FILE = REPO_ROOT / "tests" / "colab" / "colab_image.txt"  # Colab's Python and package versions
KERNEL = ["ipykernel", "nbclient"]  # the test's own kernel machinery, installed beside the image
PEAK_BYTES = 8 * 2**30  # a kernel's peak resident memory, at most
# Longest first (as measured in CI's run, --jobs 2 --smoke --scale full), so that with --jobs 2 the short ones
# fill in at the end and the run does not end on one long chapter (conftest.py does the same for nbval's files).
LONGEST_FIRST = ("08_variants.ipynb", "07_qlora.ipynb", "06_finetuning.ipynb", "05_memory.ipynb", "04_timing.ipynb",
                 "03_counting_parameters.ipynb", "09_distributed.ipynb", "01_math_of_lora.ipynb")

# Run inside the clean venv: executes one notebook with nbclient, writes it back executed.
RUNNER = r"""
import sys, nbformat
from nbclient import NotebookClient
from traitlets.config import Config
import resource
src, dst, cwd, sockets = sys.argv[1:5]
nb = nbformat.read(src, as_version=4)
for cell in nb.cells:  # "Run all" on Colab and in Jupyter stops at the first error, whatever the tags
    tags = cell.metadata.get("tags", [])
    if "raises-exception" in tags:
        cell.metadata["tags"] = [t for t in tags if t != "raises-exception"]
# The kernel talks over Unix sockets, not TCP ports: with --jobs 2 two kernels start at once, and a TCP port
# that jupyter_client found free can be taken before the kernel binds it ("Address already in use").
client = NotebookClient(nb, timeout=1800, kernel_name="python3", allow_errors=False,
                        resources={"metadata": {"path": cwd}},
                        config=Config({"KernelManager": {"transport": "ipc", "ip": sockets}}))
try:
    client.execute()
finally:
    nbformat.write(nb, dst)
    # the kernel, a child of this process, has been waited for: its peak resident set (Linux: KiB)
    print("KERNEL_PEAK_BYTES", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
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
      "numpy": importlib.metadata.version("numpy"), "peft": importlib.metadata.version("peft"),
      "lorakit": lorakit.__file__}))"""


def run(cmd: list[str], **kwargs) -> None:
    """Run a command; on failure show its output and stop."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")


def read_image(path: pathlib.Path = IMAGE_FILE) -> tuple[str, list[str]]:
    """The Python version ("3.13") and the package pins that the image file records."""
    text = path.read_text()
    found = re.search(r"^# python: (\d+\.\d+)\s*$", text, re.M)
    if not found:
        raise SystemExit(f"{path} must record the Python version in a line '# python: X.Y'")
    pins = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not any(p.startswith("torch==") for p in pins) or not any(p.startswith("peft==") for p in pins):
        raise SystemExit(f"{path} must pin torch and peft")
    return found.group(1), pins


def find_python(version: str) -> str:
    """An interpreter of that version: the newest under pyenv, else pythonX.Y on PATH."""
    pyenv = pathlib.Path(os.environ.get("PYENV_ROOT", pathlib.Path.home() / ".pyenv")) / "versions"
    found = sorted(pyenv.glob(f"{version}.*/bin/python{version}"),
                   key=lambda p: [int(x) for x in p.parts[-3].split(".") if x.isdigit()])
    if found:
        return str(found[-1])
    on_path = shutil.which(f"python{version}")
    if on_path:
        return on_path
    raise SystemExit(f"Colab's image needs Python {version}: none under {pyenv} or on PATH "
                     f"(install it, e.g. pyenv install {version})")


def image_venv(rebuild: bool = False) -> tuple[pathlib.Path, float]:
    """The cached venv of Colab's image, built if missing; returns its path and the seconds spent building."""
    key = hashlib.sha256(IMAGE_FILE.read_bytes() + " ".join(KERNEL).encode()).hexdigest()[:16]
    cache = pathlib.Path(os.environ.get("LORA_BOOK_CACHE", pathlib.Path.home() / ".cache" / "lora-book"))
    venv = cache / f"colab-image-{key}"
    if (venv / ".complete").exists() and not rebuild:
        return venv, 0.0
    start = time.perf_counter()
    version, pins = read_image()
    shutil.rmtree(venv, ignore_errors=True)
    building = cache / f"colab-image-{key}.building"
    shutil.rmtree(building, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    run([find_python(version), "-m", "venv", str(building)])
    run([str(building / "bin" / "python"), "-m", "pip", "install", "-q", *pins, *KERNEL])
    # Built beside, renamed when complete: a killed build never looks complete. Only `python -m` is used,
    # so the scripts' first lines (which name the build folder) do not matter.
    building.rename(venv)
    (venv / ".complete").write_text(IMAGE_FILE.read_text())
    for stale in cache.glob("colab-image-*"):  # earlier images: a few GB each
        if stale != venv:
            shutil.rmtree(stale, ignore_errors=True)
    return venv, time.perf_counter() - start


def copy_venv(src: pathlib.Path, dest: pathlib.Path) -> None:
    """A copy of a venv that the run may change: hard links (instant, and pip replaces files rather than
    writing into them, so the cached image is untouched), or a real copy across file systems."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    linked = subprocess.run(["cp", "-al", str(src), str(dest)], capture_output=True, text=True)
    if linked.returncode:  # e.g. another file system: "Invalid cross-device link"
        print(f"hard links failed ({linked.stderr.strip()[:200]}): copying the image (slow)", flush=True)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, symlinks=True)


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


def check(executed: pathlib.Path, venv: pathlib.Path, pinned_peft: str, torch_before: str,
          numpy_before: str) -> list[str]:
    """What went wrong in an executed copy (empty if nothing)."""
    nb = json.loads(executed.read_text())
    errors = [(i, o) for i, c in enumerate(nb["cells"]) for o in c.get("outputs", []) if o["output_type"] == "error"]
    if errors:  # "Run all" stopped here; nothing after it ran
        i, err = errors[0]
        return [f"cell {i} raised {err['ename']}: {err['evalue'][:500]}"]
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
    if info["numpy"] != numpy_before:
        problems.append(f"the set-up cell changed numpy: {numpy_before} -> {info['numpy']}")
    if info["peft"] != pinned_peft:
        problems.append(f"peft {info['peft']}, pinned {pinned_peft}")
    if not info["lorakit"].startswith(str(venv)):
        problems.append(f"lorakit imported from {info['lorakit']}, not installed from the repository")
    return problems


def run_chapter(notebook: pathlib.Path, work: pathlib.Path, image: pathlib.Path, site: pathlib.Path,
                repo_url: str, local_url: str, pinned: str, preinstall: list[str],
                smoke: bool = False, scale: str | None = None) -> tuple[list[str], float, int]:
    """One chapter in a fresh runtime (a copy of the image), as a reader who opens it from its rocket button
    gets; returns what went wrong (empty if nothing), the seconds it took and the kernel's peak bytes."""
    start = time.perf_counter()
    venv = work / "venv" / notebook.stem
    copy_venv(image, venv)
    python = str(venv / "bin" / "python")
    if preinstall:
        run([python, "-m", "pip", "install", "-q", *preinstall])
    version = "import importlib.metadata as m; print(m.version('torch'), m.version('numpy'))"
    torch_before, numpy_before = subprocess.run([python, "-c", version], capture_output=True, text=True,
                                                check=True).stdout.split()
    # Colab's runtime: no LORAKIT_SCALE, no access to the checkout, a private Jupyter data folder
    # (so no kernel spec of this machine's is picked instead of the venv's own).
    env = {k: v for k, v in os.environ.items()
           if k not in ("LORAKIT_SCALE", "LORAKIT_SMOKE", "PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH")}
    jupyter = work / "jupyter" / notebook.stem
    sockets = work / "sockets" / notebook.stem[:2]  # the kernel's Unix sockets: <prefix>-1 to -5 (main checks)
    # A private matplotlib folder too: the image's font cache must not land in ~/.cache, naming font files
    # of a venv this run deletes.
    env.update(JUPYTER_DATA_DIR=str(jupyter), JUPYTER_CONFIG_DIR=str(jupyter), MPLCONFIGDIR=str(jupyter / "mpl"),
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    if smoke:
        env["LORAKIT_SMOKE"] = "1"  # the test's choice (--smoke), not Colab's: fewer steps, same cells
    if scale:
        env["LORAKIT_SCALE"] = scale  # "full": what lorakit.scale() picks on a Colab GPU runtime
    content = work / "content" / notebook.stem  # Colab's /content: an empty folder
    content.mkdir(parents=True)
    src, dst = content / notebook.name, work / f"{notebook.stem}.executed.ipynb"
    try:
        colab_copy(notebook, repo_url, local_url, src, site)
    except ValueError as err:
        return [str(err)], time.perf_counter() - start, 0
    proc = subprocess.run([python, "-c", RUNNER, str(src), str(dst), str(content), str(sockets)],
                          cwd=content, env=env, capture_output=True, text=True)
    problems = (check(dst, venv, pinned, torch_before, numpy_before) if dst.exists()
                else ["no executed notebook written"])
    if proc.returncode and not any(" raised " in p for p in problems):
        problems.insert(0, "execution failed:\n" + proc.stderr[-4000:])
    found = re.search(r"KERNEL_PEAK_BYTES (\d+)", proc.stdout)
    peak = int(found.group(1)) if found else 0
    if not found:
        problems.append("the runner did not report the kernel's peak memory")
    elif peak > PEAK_BYTES:
        problems.append(f"the kernel peaked at {peak / 2**30:.1f} GiB (at most {PEAK_BYTES / 2**30:.0f} GiB)")
    return problems, time.perf_counter() - start, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", default=["notebooks/01_math_of_lora.ipynb"])
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed) for a look")
    parser.add_argument("--preinstall", action="append", default=[], metavar="PKG",
                        help="also install PKG into each chapter's copy of the image before it runs")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached image venv")
    parser.add_argument("--jobs", type=int, default=1, help="chapters run at once (default 1)")
    parser.add_argument("--smoke", action="store_true",
                        help="LORAKIT_SMOKE=1 in the runtime: every cell runs, with the fewest repeats, steps and "
                             "sweep points (lorakit.fewer); asserts that need real training are skipped")
    parser.add_argument("--scale", choices=("ci", "full"), default=None,
                        help="LORAKIT_SCALE in the runtime (default: unset, as on Colab, where lorakit picks "
                             "'full' on a GPU and 'ci' on a CPU; this machine has no GPU)")
    args = parser.parse_args(argv)
    notebooks = [(REPO_ROOT / n).resolve() for n in args.notebooks]
    notebooks.sort(key=lambda nb: LONGEST_FIRST.index(nb.name) if nb.name in LONGEST_FIRST else len(LONGEST_FIRST))
    repo_url = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())["repository"]["url"]
    pinned = re.search(r"^peft==(\S+)", (REPO_ROOT / "requirements.txt").read_text(), re.M).group(1)

    work = pathlib.Path(tempfile.mkdtemp(prefix="play-colab-"))
    (work / "sockets").mkdir()  # the kernels' Unix sockets, outside the notebooks' folders
    if len(os.fsencode(work / "sockets" / "00-99")) > 107:  # a socket's path holds at most 107 bytes
        shutil.rmtree(work)
        raise SystemExit(f"{work}: too long a path for the kernels' Unix sockets (set TMPDIR shorter)")
    times: dict[str, float] = {}
    failed = 0
    try:
        start = time.perf_counter()
        local_url = snapshot(work / "repo")
        times["snapshot"] = time.perf_counter() - start
        image, built = image_venv(args.rebuild)
        times["image venv built" if built else "image venv (cached)"] = built
        site = work / "colab_site"  # holds google/colab/__init__.py, outside the venv and the notebook's folder
        (site / "google" / "colab").mkdir(parents=True)
        (site / "google" / "colab" / "__init__.py").write_text('"""Stand-in for the google.colab package."""\n')
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            futures = {nb: pool.submit(run_chapter, nb, work, image, site, repo_url, local_url, pinned,
                                       args.preinstall, args.smoke, args.scale) for nb in notebooks}
            for notebook, future in futures.items():
                problems, seconds, peak = future.result()
                times[f"{notebook.name} (kernel peak {peak / 2**30:.2f} GiB)"] = seconds
                failed += bool(problems)
                print(("FAIL " if problems else "PASS ") + notebook.name + "".join(f"\n    {p}" for p in problems),
                      flush=True)
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
