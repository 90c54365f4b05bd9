# gradscope: every target installs what it needs first.
#
#   make reproduce   set up, build, run experiments/quickstart.json, draw its charts
#   make test        set up and run every test (what CI runs)
#   make lint        cargo fmt --check and clippy -D warnings
#   make bench       throughput and probe overhead against PyTorch eager (results/bench/)
#   make bench-kernels  the fast kernels against their portable code (results/bench/kernels.md)
#   make fuzz        property tests of the file parsers, FUZZ_SECS (60) seconds each
#   make fashion     Fashion-MNIST depth sweeps (MLP and CNN) and their report.md (gradscope check estimates the time)
#   make glorot      Glorot & Bengio 2010 init comparison on Fashion-MNIST, its reports and compare page
#   make landscape   Li et al. 2018 loss-landscape slices of plain and residual CNNs, and their report
#   make lesion      Veit et al. 2016 lesion and path studies of plain and residual CNNs, and their report
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
# The quickstart's MLPs (width 64, batch 128) run fastest on one thread: its
# ops are too small to split, and two OpenMP threads spin-wait on each other
# whenever anything else runs on a 2-core machine (measured: plain-d4 0.6 s
# on one thread, 37 s on two beside a compiler).
REPRODUCE_THREADS ?= 1
# The published CPU sweeps train one run per core at a time (`run --jobs`),
# each on REPRODUCE_THREADS (…_THREADS) threads; a run's files do not depend
# on JOBS. Measured on the 2-core machine: the quickstart in docs/PERFORMANCE.md.
JOBS ?= $(shell getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
# reproduce trains every run again; RUN_ARGS=--resume continues a sweep
# that was stopped instead.
RUN_ARGS ?= --restart
# make fuzz: seconds per property (six properties: IDX reader, IDX dataset
# and preparation, CIFAR-10 reader, experiment parser on any text, on
# edited files and on edited field values). make test runs 64 cases of each.
FUZZ_SECS ?= 60

.PHONY: all setup test-tools build test lint reproduce plot check clean nextest bench bench-kernels bench-jobs cost fuzz fashion fashion-data glorot landscape lesion

# make bench: gradscope against bench/pytorch_reference.py on the same
# libtorch. BENCH_ARGS passes more options (e.g. --pairs 3 --device cuda, or
# --workload lstm to bench one workload).
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

# Two tests need system programs: the real-Slurm test
# (crates/cli/tests/slurm.rs: a one-node cluster started by
# scripts/slurm-local.sh, Debian's slurm-wlm and munge) and the browser test
# (crates/cli/tests/browser.rs: headless chromium driven by chromedriver).
# As root with apt-get (as CI runs) they are installed here and the tests are
# then required to run (GRADSCOPE_REQUIRE_SLURM=1, GRADSCOPE_REQUIRE_BROWSER=1);
# elsewhere each test says why it is skipped.
TEST_PACKAGES := slurm-wlm munge chromium chromium-driver
test-tools:
	@if command -v sbatch >/dev/null && command -v slurmctld >/dev/null && command -v munged >/dev/null \
	    && command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(TEST_PACKAGES); } \
	    || echo "note: apt-get could not install $(TEST_PACKAGES): the Slurm and browser tests will be skipped"; \
	else echo "note: $(TEST_PACKAGES) are needed by the Slurm and browser tests, and this is not root with apt-get: those tests will be skipped"; fi

# As root with apt-get the tests are required to run once their programs
# are there, so that a CI run can never skip them without saying so.
# Then the kernels, probe, train and CLI tests run a second time with the portable
# kernels, less the tests of the fast paths themselves (libtorch's OpenMP
# team, the fused SGD step) and the Slurm and browser tests (they test the
# cluster and the page, which no kernel changes).
PORTABLE_TESTS := not test(/^team::/) and not test(fused_step_matches_libtorch_ops_bit_for_bit) and not binary(slurm) and not binary(browser)
test: setup test-tools
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  command -v sbatch >/dev/null && export GRADSCOPE_REQUIRE_SLURM=1; \
	  command -v chromedriver >/dev/null && export GRADSCOPE_REQUIRE_BROWSER=1; fi; \
	$(CARGO) nextest run --workspace --no-fail-fast; rc=$$?; \
	echo "== again with GRADSCOPE_KERNELS=portable: the kernels, probe, train and CLI tests on the code a non-x86 CPU runs"; \
	GRADSCOPE_KERNELS=portable $(CARGO) nextest run -p gradscope-kernels -p gradscope-probe -p gradscope-train -p gradscope \
	  --no-fail-fast -E '$(PORTABLE_TESTS)' || rc=1; \
	exit $$rc

lint: $(STAMP)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p gradscope-kernels --no-default-features --all-targets -- -D warnings

check: build
	$(GRADSCOPE) check $(EXPERIMENT)

# reproduce keeps the published summary.csv aside before training again,
# and ends by comparing the rerun with it run by run (`gradscope verify`):
# one line, `reproduced: …` or `not reproduced: …`. The same CPU and
# thread count give the same bytes; another CPU agrees within seed noise.
REPRODUCE_NAME = $(basename $(notdir $(EXPERIMENT)))
REPRODUCE_REF = target/reproduce/$(REPRODUCE_NAME)-published-summary.csv
reproduce: build
	@mkdir -p target/reproduce; rm -f $(REPRODUCE_REF); \
	  if [ -f results/$(REPRODUCE_NAME)/summary.csv ]; then cp results/$(REPRODUCE_NAME)/summary.csv $(REPRODUCE_REF); fi
	$(GRADSCOPE) run $(EXPERIMENT) --threads $(REPRODUCE_THREADS) --jobs $(JOBS) $(RUN_ARGS)
	$(GRADSCOPE) report results/$(REPRODUCE_NAME)
	@if [ -f $(REPRODUCE_REF) ]; then $(GRADSCOPE) verify results/$(REPRODUCE_NAME) --against $(REPRODUCE_REF); \
	  else echo "not reproduced: no published results/$(REPRODUCE_NAME)/summary.csv to compare with"; fi

plot: build
	$(GRADSCOPE) plot results/$(basename $(notdir $(EXPERIMENT)))

# make cost: every `gradscope cost` target, counted and timed on this
# machine (results/cost/: cost.csv, the chart, and the table as cost.txt).
cost: build
	@mkdir -p results/cost
	$(GRADSCOPE) cost --out results/cost --threads $(THREADS) > results/cost/cost.txt.tmp && mv results/cost/cost.txt.tmp results/cost/cost.txt
	@tail -6 results/cost/cost.txt

bench: build
	$(GRADSCOPE) bench --python $(VENV)/bin/python --threads $(THREADS) $(BENCH_ARGS)

# The fast kernels against their portable code (results/bench/kernels.md).
bench-kernels: build
	$(GRADSCOPE) bench --kernels --threads $(THREADS) $(BENCH_ARGS)

# make bench-jobs: the quickstart at --jobs 1 against --jobs JOBS (one
# thread per run), and whether both write the same CSVs; writes
# results/bench-jobs/. About 8 minutes on 2 cores.
bench-jobs: build
	JOBS=$(JOBS) scripts/bench-jobs.sh

fuzz: setup
	GRADSCOPE_FUZZ_SECS=$(FUZZ_SECS) $(CARGO) nextest run -p gradscope-data -p gradscope-train \
		--no-capture -E 'test(/^fuzz::/)'

# make fashion: experiments/fashion-mlp.json and fashion-cnn.json, each
# followed by `gradscope report`. FASHION_SCALE=full runs the GPU versions
# (experiments/fashion-*-full.json) with --device cuda instead.
FASHION_DIR := /usr/share/datasets/fashion-mnist
# A sweep that stopped early (a failed run, Ctrl-C) still gets its report,
# which marks the unfinished runs; then make stops with the sweep's status.
report_then_exit = if [ -d $(1)/runs ]; then $(GRADSCOPE) report $(1) || exit 1; fi; [ $$rc = 0 ] || exit $$rc
FASHION_SCALE ?= cpu
# One thread: the CPU sweeps' nets (MLP width 64, CNN width 8 on 14×14
# images) are small, and fashion-mlp took 4 min 49 s on one thread against
# 14 min 42 s on two (OpenMP threads spin-waiting beside other work).
FASHION_THREADS ?= 1
ifeq ($(FASHION_SCALE),full)
FASHION_SUFFIX := -full
FASHION_DEVICE ?= cuda
# Several runs per GPU is not measured yet: one at a time unless asked.
FASHION_JOBS ?= 1
else
FASHION_SUFFIX :=
FASHION_DEVICE ?= cpu
FASHION_JOBS ?= $(JOBS)
endif

fashion: build fashion-data
	@for e in fashion-mlp fashion-cnn; do \
	  $(GRADSCOPE) run experiments/$$e$(FASHION_SUFFIX).json --threads $(FASHION_THREADS) --jobs $(FASHION_JOBS) --device $(FASHION_DEVICE) $(RUN_ARGS); rc=$$?; \
	  $(call report_then_exit,results/$$e$(FASHION_SUFFIX)); \
	done

# Debian's dataset-fashion-mnist puts the IDX files in FASHION_DIR (the
# default of the fashion-mnist dataset kind); as root it is installed here.
fashion-data:
	@if ls $(FASHION_DIR)/train-images-idx3-ubyte* >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update && apt-get install -y dataset-fashion-mnist; \
	else \
	  echo "error: Fashion-MNIST is not in $(FASHION_DIR): install Debian's package (sudo apt-get install dataset-fashion-mnist), then rerun"; exit 1; \
	fi

# make glorot: Glorot & Bengio's init comparison, one experiment per
# activation (sigmoid, tanh), each sweeping the init (standard against
# normalized) over two seeds, each with its report.md.
GLOROT_THREADS ?= 1
GLOROT := glorot-sigmoid glorot-tanh
glorot: build fashion-data
	@for e in $(GLOROT); do \
	  $(GRADSCOPE) run experiments/$$e.json --threads $(GLOROT_THREADS) --jobs $(JOBS) $(RUN_ARGS); rc=$$?; \
	  $(call report_then_exit,results/$$e); \
	done
	$(GRADSCOPE) compare $(addprefix results/,$(GLOROT)) --out results/glorot-compare

# make landscape: Li et al. 2018's loss-landscape slices. Trains
# experiments/landscape.json (plain and residual CNN-20 and CNN-56, two
# seeds, with their final weights saved), evaluates each run's loss surface
# with `gradscope landscape` along LANDSCAPE_DIRECTIONS (one grid per seed
# of directions, so every reading has a spread), then once around each
# run's initial weights (the control), and writes the report. LANDSCAPE_SCALE=full runs the
# GPU version (experiments/landscape-full.json, --device cuda, a 51×51 grid).
LANDSCAPE_SCALE ?= cpu
LANDSCAPE_THREADS ?= 1
LANDSCAPE_DIRECTIONS ?= 0,1,2
ifeq ($(LANDSCAPE_SCALE),full)
LANDSCAPE := landscape-full
LANDSCAPE_DEVICE ?= cuda
LANDSCAPE_JOBS ?= 1
LANDSCAPE_ARGS ?= --grid 51 --samples 10000
else
LANDSCAPE := landscape
LANDSCAPE_DEVICE ?= cpu
LANDSCAPE_JOBS ?= $(JOBS)
LANDSCAPE_ARGS ?= --grid 25 --samples 1024
endif

landscape: build fashion-data
	$(GRADSCOPE) run experiments/$(LANDSCAPE).json --threads $(LANDSCAPE_THREADS) --jobs $(LANDSCAPE_JOBS) --device $(LANDSCAPE_DEVICE) --no-plot $(RUN_ARGS)
	$(GRADSCOPE) landscape $$(ls -d results/$(LANDSCAPE)/runs/*/ | grep -v '\.partial/$$') --seed $(LANDSCAPE_DIRECTIONS) --threads $(LANDSCAPE_THREADS) --device $(LANDSCAPE_DEVICE) $(LANDSCAPE_ARGS)
	$(GRADSCOPE) landscape $$(ls -d results/$(LANDSCAPE)/runs/*/ | grep -v '\.partial/$$') --at init --threads $(LANDSCAPE_THREADS) --device $(LANDSCAPE_DEVICE) $(LANDSCAPE_ARGS)
	$(GRADSCOPE) report results/$(LANDSCAPE)

# make lesion: Veit et al. 2016's lesion and path studies. Trains
# experiments/lesion.json (plain and residual CNN-20 and CNN-56, two seeds,
# final weights saved), then `gradscope lesion` deletes and swaps their
# blocks and measures the gradient per path length, and writes the report.
LESION_THREADS ?= 1
LESION_ARGS ?= --samples 1000 --per-k 5
lesion: build fashion-data
	$(GRADSCOPE) run experiments/lesion.json --threads $(LESION_THREADS) --jobs $(JOBS) --no-plot $(RUN_ARGS)
	$(GRADSCOPE) lesion $$(ls -d results/lesion/runs/*/ | grep -v '\.partial/$$') --threads $(LESION_THREADS) --device cpu $(LESION_ARGS)
	$(GRADSCOPE) report results/lesion

clean:
	$(CARGO) clean
