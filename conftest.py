"""Root conftest: notebooks run at the 'ci' scale that their stored outputs were made at."""
import os

# The kernel nbval starts inherits this environment, so a GPU machine still checks the ci outputs.
os.environ.setdefault("LORAKIT_SCALE", "ci")
os.environ.setdefault("TQDM_DISABLE", "0")
