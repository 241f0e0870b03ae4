"""Where things live on disk: the only module that defines paths.

``MNIST_KNN_DATA`` (an environment variable) moves the data directory, for example to share one
download and one search cache between several clones.
"""

import os
from pathlib import Path

__all__ = ["CACHE_DIR", "DATA_DIR", "FIGURES_DIR", "NOTEBOOKS_DIR", "PROJECT_ROOT", "RESULTS_FILE"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("MNIST_KNN_DATA", PROJECT_ROOT / "data"))
CACHE_DIR = DATA_DIR / "cache"
FIGURES_DIR = PROJECT_ROOT / "figures"
RESULTS_FILE = PROJECT_ROOT / "results.json"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
