# The two commands a newcomer needs:  `make demo` (set up + quickstart)  and  `make test` (set up + tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-slow lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and exactly pinned: the CPU wheel (a looser spec pulls a multi-GB CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	@if ! command -v cp2k.psmp >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing CP2K from Debian (apt-get install -y cp2k)"; \
	    (apt-get install -y -q cp2k >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q cp2k >/dev/null)) \
	      || echo "warning: could not install cp2k; DFT runs will fail until cp2k.psmp is on PATH"; \
	  else echo "warning: no apt-get; install CP2K yourself (cp2k.psmp on PATH)"; fi; \
	fi
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/bandflow run workflows/quickstart.yaml --plot quickstart_alignment.png

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check bandflow tests benchmarks

bench: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
