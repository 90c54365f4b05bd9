# gradscope: every target installs what it needs first.
#
#   make reproduce   set up, build, run experiments/quickstart.json, draw its charts
#   make test        set up and run every test (what CI runs)
#   make lint        cargo fmt --check and clippy -D warnings
#   make bench       throughput and probe overhead against PyTorch eager (results/bench/)
#   make fuzz        property tests of the file parsers, FUZZ_SECS (60) seconds each
#
# libtorch comes from PyPI's torch wheel in a venv that every clone shares
# (override with `make VENV=/path`), so a fresh clone does not download
# 4.6 GB again. tch =0.24.0 needs exactly libtorch 2.11.0.

VENV ?= $(HOME)/.cache/gradscope/venv
TORCH_VERSION := 2.11.0
STAMP := $(VENV)/.gradscope-torch-$(TORCH_VERSION)

# torch-sys asks the venv's Python where libtorch lives.
export LIBTORCH_USE_PYTORCH := 1
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)

CARGO ?= cargo
GRADSCOPE := target/release/gradscope
EXPERIMENT ?= experiments/quickstart.json
THREADS ?= 2
# reproduce trains every run again; RUN_ARGS=--resume continues a sweep
# that was stopped instead.
RUN_ARGS ?= --restart
# make fuzz: seconds per property (six properties: IDX reader, IDX dataset
# and preparation, CIFAR-10 reader, experiment parser on any text, on
# edited files and on edited field values). make test runs 64 cases of each.
FUZZ_SECS ?= 60

.PHONY: all setup build test lint reproduce plot check clean nextest bench fuzz

# make bench: gradscope against bench/pytorch_reference.py on the same
# libtorch. BENCH_ARGS passes more options (e.g. --pairs 3 --device cuda).
BENCH_ARGS ?=

all: build

setup: $(STAMP) nextest

$(STAMP):
	@command -v python3 >/dev/null || { echo "error: python3 is needed to install libtorch (apt-get install python3 python3-venv)"; exit 1; }
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV) || { echo "error: could not create $(VENV); on Debian: apt-get install python3-venv"; exit 1; }
	$(VENV)/bin/pip install --disable-pip-version-check -q torch==$(TORCH_VERSION)
	@touch $@

nextest:
	@command -v cargo-nextest >/dev/null || $(CARGO) install cargo-nextest --locked

build: $(STAMP)
	$(CARGO) build --release -p gradscope

test: setup
	$(CARGO) nextest run --workspace --no-fail-fast

lint: $(STAMP)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check: build
	$(GRADSCOPE) check $(EXPERIMENT)

reproduce: build
	$(GRADSCOPE) run $(EXPERIMENT) --threads $(THREADS) $(RUN_ARGS)

plot: build
	$(GRADSCOPE) plot results/$(basename $(notdir $(EXPERIMENT)))

bench: build
	$(GRADSCOPE) bench --python $(VENV)/bin/python --threads $(THREADS) $(BENCH_ARGS)

fuzz: setup
	GRADSCOPE_FUZZ_SECS=$(FUZZ_SECS) $(CARGO) nextest run -p gradscope-data -p gradscope-train \
		--no-capture -E 'test(/^fuzz::/)'

clean:
	$(CARGO) clean
