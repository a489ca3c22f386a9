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
