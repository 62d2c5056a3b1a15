# robot_learning — developer entry points. Everything runs from the project venv (.venv),
# which `make setup` creates/updates through scripts/setup.sh only when its inputs changed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.setup-stamp
PYTEST_ARGS ?=
MUJOCO_GL   ?= egl

.PHONY: help setup test demo lint bench clean

help:
	@echo "make setup   create/update .venv (scripts/setup.sh; no-op when up to date)"
	@echo "make test    run the test suite (PYTEST_ARGS='-k lift -x' to pass options)"
	@echo "make demo    collect -> train -> eval -> ROS 2 loop -> report (outputs/demo/, resumable)"
	@echo "make lint    ruff check + mypy"
	@echo "make bench   simulation throughput benchmark"
	@echo "make clean   remove caches and build outputs (keeps .venv; 'rm -rf .venv' for that)"

# The stamp is written by scripts/setup.sh; it is redone only when its inputs are newer.
$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

setup: $(STAMP)

test: $(STAMP)
	MUJOCO_GL=$(MUJOCO_GL) $(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	MUJOCO_GL=$(MUJOCO_GL) $(VENV)/bin/robot-learning demo

# both linters always run; the target fails if either found something
lint: $(STAMP)
	@rc=0; \
	echo "$(VENV)/bin/ruff check ."; $(VENV)/bin/ruff check . || rc=1; \
	echo "$(VENV)/bin/mypy"; $(VENV)/bin/mypy || rc=1; \
	exit $$rc

bench: $(STAMP)
	MUJOCO_GL=$(MUJOCO_GL) $(PY) scripts/bench/sim_throughput.py

clean:
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache MUJOCO_LOG.TXT \
		ros2_ws/build ros2_ws/install ros2_ws/log
	find . -path ./$(VENV) -prune -o -path './.venv-*' -prune -o \
		\( -name __pycache__ -o -name '*.egg-info' \) -type d -print0 | xargs -0 -r rm -rf
