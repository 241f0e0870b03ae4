"""pytest's configuration for everything it collects: tests/, the package's doctests and the notebooks (nbval).

No progress bars (:mod:`mnist_knn.progress`): set before any test runs, so nbval's kernels, which inherit this
process's environment, compute exactly the stored outputs they are compared with, also when pytest is run by
hand from a JupyterLab terminal or notebook. Tests of the bars set the variable themselves (monkeypatch).
"""

import os

os.environ["MNIST_KNN_PROGRESS"] = "0"
