# Two commands on a fresh machine: `make app` (install, run on the sample), `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: app test check install dist bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch 2.14.1 / torchvision 0.29.1 come from this machine's local wheel store (see DEVELOPERS.md)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

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

dist: $(STAMP)
	$(BIN)/pip install -q pyinstaller
	$(BIN)/python -c "from pathlib import Path; from core.models.encoders import export_encoders; export_encoders(Path('models/encoders'))"
	$(BIN)/pyinstaller --noconfirm --log-level WARN build.spec
	@du -sh dist/Tagline-*

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
