# The README's set-up: `make demo` runs the main job, `make test` the checks.
# `make install` builds the environment in $(VENV); it is idempotent: a step
# re-runs only when its requirement file changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
STAMPS := $(VENV)/.stamps
STEP := tools/install_step.sh $(VENV)/install-logs
# Some machines' pip configuration adds a local CPU-only torch wheel of the same
# version; torchvision's registry wheels fail against it. --isolated makes pip
# ignore that configuration for this one step. Override with TORCH_PIP_FLAGS=.
TORCH_PIP_FLAGS ?= --isolated
# MMCV_WITH_CUDA=1 compiles mmcv's CUDA ops (needs nvcc matching torch's CUDA).
MMCV_WITH_CUDA ?= 0
ifeq ($(MMCV_WITH_CUDA),1)
MMCV_ENV := FORCE_CUDA=1 MMCV_WITH_OPS=1
MMCV_PIP_FLAGS := --no-cache-dir
else
MMCV_ENV := MMCV_WITH_OPS=1
MMCV_PIP_FLAGS :=
endif
ARGS ?=
# make demo SEEDS=1: a quick look with one seed (default: three)
SEEDS ?= 3

.PHONY: install test lint demo demo-cls clean

install: $(STAMPS)/vrm_det
	@$(PY) -c "import vrm_det, mmcv.ops, mmdet, mmpretrain, torchvision.ops; \
	print('[install] environment ready in $(VENV): vrm_det', vrm_det.__version__)"

$(STAMPS)/venv:
	@$(STEP) "1/6 virtual environment" "rm -rf $(VENV) && make install" \
		$(PYTHON) -m venv $(VENV)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/torch: requirements/torch.txt $(STAMPS)/venv
	@$(STEP) "2/6 torch and torchvision" "make install (downloads resume from pip's cache)" \
		$(PIP) install $(TORCH_PIP_FLAGS) -r requirements/torch.txt
	@touch $@

$(STAMPS)/build: requirements/build.txt $(STAMPS)/torch
	@$(STEP) "3/6 build tools" "make install" \
		$(PIP) install -r requirements/build.txt
	@touch $@

$(STAMPS)/mmcv: requirements/mmcv.txt $(STAMPS)/build
	@echo "[install 4/6] mmcv is compiled from source with MAX_JOBS=$(JOBS): about 9 min on 2 cores the first time, seconds once pip has cached the wheel"
	@$(STEP) "4/6 mmcv (compile)" "make install; a broken cache: $(PIP) cache remove mmcv" \
		env MAX_JOBS=$(JOBS) $(MMCV_ENV) $(PIP) install $(MMCV_PIP_FLAGS) --no-build-isolation -r requirements/mmcv.txt
	@$(PY) -c "import mmcv.ops" || { echo "[install 4/6] mmcv installed without its compiled ops; run: $(PIP) uninstall -y mmcv mmcv-lite && $(PIP) cache remove mmcv && make install" >&2; exit 1; }
	@touch $@

$(STAMPS)/runtime: requirements/runtime.txt requirements/tests.txt $(STAMPS)/mmcv
	@$(STEP) "5/6 mmengine, mmdet, mmpretrain, test tools" "make install" \
		$(PIP) install -r requirements/runtime.txt -r requirements/tests.txt
	@touch $@

$(STAMPS)/vrm_det: setup.py $(STAMPS)/runtime
	@$(STEP) "6/6 vrm_det (editable)" "make install" \
		$(PIP) install --no-deps --no-build-isolation -e .
	@touch $@

lint: install
	$(VENV)/bin/ruff check vrm_det tools tests configs

test: lint
	$(PY) -m pytest tests

demo: install
	$(PY) tools/demo.py --seeds $(shell seq 0 $$(($(SEEDS) - 1))) $(ARGS)

# Fashion-MNIST (real photographs): apt-get install dataset-fashion-mnist first
demo-cls: install
	$(PY) tools/demo_cls.py --seeds $(shell seq 0 $$(($(SEEDS) - 1))) $(ARGS)

clean:
	rm -rf $(VENV) work_dirs
