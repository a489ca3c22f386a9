"""Root conftest: notebooks run at the 'ci' scale that their stored outputs were made at."""
import os
import tempfile

# The kernel nbval starts inherits this environment, so a GPU machine still checks the ci outputs.
os.environ.setdefault("LORAKIT_SCALE", "ci")
# No progress bars under pytest, in the tests or the kernels nbval starts (tqdm reads any non-empty
# TQDM_DISABLE as true; the bars sit in cells whose output nbval ignores anyway).
os.environ.setdefault("TQDM_DISABLE", "1")
# A font cache of matplotlib's own, made here from this environment's fonts: a cache left in ~/.cache by
# another environment (one since deleted) names font files that are gone, and every plot that needs one
# then writes "findfont: ... not found" to stderr, which nbval compares. Built now, in this process, so
# that "building the font cache" is not printed in a notebook cell either.
os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="lorabook-mpl-"))
import matplotlib.font_manager  # noqa: E402,F401  (builds the cache)


# Longest first: under `pytest -n 2 --dist loadfile --no-loadscope-reorder` (pyproject.toml) each file goes, in
# this order, to whichever worker is free: the fine-tuning chapter runs on one worker while the variants, memory
# and QLoRA chapters run on the other (about as long together); then the timing and distributed chapters, one
# on each; the unit tests and the short chapters fill in at the end. The sort is stable: a notebook's cells keep
# their order. (tests/colab/play_colab.py starts its longest chapters first too.)
FIRST = ("06_finetuning.ipynb", "08_variants.ipynb", "05_memory.ipynb", "07_qlora.ipynb", "04_timing.ipynb",
         "09_distributed.ipynb")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: FIRST.index(item.path.name) if item.path.name in FIRST else len(FIRST))
