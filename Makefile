# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The demo runs the shipped scenarios tagged 'demo' (9 of 16, chosen to cover 2x2, two-person
# and uneven designs) on the embedded model: about 5 minutes on 2 cores after set-up.
DEMO_ARGS ?= scenarios/workplace --tag demo

.PHONY: setup chromium demo test test-fast test-slow bench clean

setup: $(STAMP) chromium

# The report's browser tests drive Debian's Chromium through playwright (which downloads no
# browser of its own): installed with apt-get when missing, which needs root.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium with apt-get (the report's browser tests need it)"; \
	    apt-get install -y chromium || { apt-get update && apt-get install -y chromium; } || \
	      echo "warning: chromium could not be installed; the report's browser tests will fail"; \
	  else echo "chromium is missing: run 'apt-get install -y chromium' as root (the report's"\
	    "browser tests need it)"; fi; fi

# llama-cpp-python compiles llama.cpp from source (about 6 minutes on 2 cores). A native build
# uses every instruction the build CPU reports, and on CPUs that report AMX the kernels then
# die with SIGILL inside virtual machines, so we build a portable wheel (AVX2, no AMX) once
# into a wheelhouse outside the checkout, where later installs and fresh clones reuse it.
LLAMA_CPP_VERSION := 0.3.36
WHEELHOUSE ?= $(HOME)/.cache/agentsim/wheels
LLAMA_WHEEL = $(wildcard $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if [ -z "$(LLAMA_WHEEL)" ]; then \
	  echo "building llama-cpp-python $(LLAMA_CPP_VERSION) (portable CPU build, about 6 minutes)"; \
	  CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip wheel --quiet --no-deps \
	    --no-binary llama-cpp-python --no-cache-dir -w $(WHEELHOUSE) \
	    llama-cpp-python==$(LLAMA_CPP_VERSION); fi
	$(BIN)/python -m pip install --quiet --find-links $(WHEELHOUSE) -e '.[test,finetune]' \
	  llama-cpp-python==$(LLAMA_CPP_VERSION)
	@touch $(STAMP)

demo: setup
	$(BIN)/agentsim run $(DEMO_ARGS) --setting interaction --replicates 1 --seed 0

# Tests marked slow (minutes of training on the CPU) run with test-slow; one short training run
# stays in test.
test: setup
	$(BIN)/python -m pytest -m "not slow"

test-slow: setup
	$(BIN)/python -m pytest -m slow

test-fast: setup
	$(BIN)/python -m pytest -m "not integration and not slow"

# Each script prints one line: its ratio, inputs and conditions (see bench/*.py).
bench: setup
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/concurrency.py
	$(BIN)/python bench/judging.py
	$(BIN)/python bench/cache.py
	$(BIN)/python bench/executors.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/finetuned.py

clean:
	rm -rf $(VENV) build *.egg-info
