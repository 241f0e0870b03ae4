# The README's two commands:
#   make report   rebuild every notebook (in order, in a fresh kernel) and the HTML site in site/
#   make test     run every test: unit tests, doctests, scikit-learn comparisons, strict nbval of every notebook
# Both first create .venv with the exact pins of requirements.txt, install Chromium for kaleido
# when it is missing, and fetch and verify the data. Each step is skipped when already done.
# The development loop:
#   make check    unit tests and doctests only: no notebooks, no Chromium, no full-MNIST comparisons

# Recipes run in bash with pipefail, so that a command piped into a filter still fails the build.
SHELL := bash
.SHELLFLAGS := -o pipefail -c

# No progress bars (mnist_knn/progress.py) in anything make runs: the notebooks' stored outputs stay as they are,
# even when make itself runs inside a JupyterLab kernel (whose environment would otherwise turn them on).
export MNIST_KNN_PROGRESS := 0

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]-*.ipynb))
EXECUTED  := $(patsubst notebooks/%.ipynb,data/executed/%.stamp,$(NOTEBOOKS))
PACKAGE   := $(wildcard mnist_knn/*.py mnist_knn/*/*.py)
# Drops pip's warning about a --find-links location that does not exist; unlike grep -v, sed succeeds
# when nothing is left to print, so the pipeline's status is pip's.
PIP_FILTER := sed '/is ignored: it is neither/d'
# torch==2.13.0+cpu (requirements.txt) is on PyTorch's CPU index, not on PyPI (whose torch is a CUDA build of
# several GB). This project's machines carry the wheel in pip's find-links and reach no other index: asking that
# index there costs 5 retries per package (minutes). So the index is added only when the wheel is not on disk.
TORCH_INDEX := $(if $(wildcard /opt/wheels/torch-2.13.0+cpu-*.whl),,--extra-index-url https://download.pytorch.org/whl/cpu)

.PHONY: report test check env chromium data bench site clean-cache

report: env chromium data $(EXECUTED) site

test: env chromium data
	$(PY) -m pytest

# Deselects the tests marked slow, browser and site in pyproject.toml; the addopts override drops nbval's options.
check: env
	$(PY) -m pytest -p no:nbval -o addopts="-p no:cacheprovider" -m "not slow and not browser and not site" \
	  --doctest-modules tests mnist_knn

env: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-warn-script-location -r requirements.txt -c constraints.txt $(TORCH_INDEX) 2>&1 | $(PIP_FILTER)
	$(PY) -m pip install --quiet --no-deps -e . 2>&1 | $(PIP_FILTER)
	$(PY) -c "import mnist_knn, numpy, sklearn, plotly, kaleido, numba, nbval, torch, faiss"
	touch $@

chromium:
	@bash scripts/ensure-chromium.sh

data: env
	$(PY) -m mnist_knn.data.datasets

# Re-execute a notebook in place only when it or the package changed since its last run.
data/executed/%.stamp: notebooks/%.ipynb $(PACKAGE) $(STAMP)
	@mkdir -p $(dir $@)
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	  --ClearOutputPreprocessor.enabled=True \
	  --ClearOutputPreprocessor.remove_metadata_fields=execution \
	  --ExecutePreprocessor.record_timing=False \
	  --ExecutePreprocessor.timeout=3600 $<
	touch $@

site: env
	$(PY) -m mnist_knn.report.site

bench: env data
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/bench_idm.py

clean-cache:
	rm -rf data/cache data/executed
