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


# Longest first: under `pytest -n 2 --dist loadfile --no-loadscope-reorder` (pyproject.toml) files are handed
# out in this order, each to a worker about to be free. Expected: the fine-tuning and variants chapters start,
# one on each worker; the two files that start several processes (the distributed chapter and its tests) follow
# the variants chapter, so they run beside the fine-tuning chapter's training, not beside a timing chapter; the
# memory and QLoRA chapters next, then the timing chapter, beside single-threaded work; the other unit tests and
# the short chapters fill in at the end. The sort is stable: a notebook's cells keep their order.
# (tests/colab/play_colab.py starts its longest chapters first too.)
FIRST = ("06_finetuning.ipynb", "08_variants.ipynb", "09_distributed.ipynb", "test_distributed.py", "05_memory.ipynb",
         "07_qlora.ipynb", "04_timing.ipynb")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: FIRST.index(item.path.name) if item.path.name in FIRST else len(FIRST))
