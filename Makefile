# Two commands on a fresh machine (see README):  `make demo`  and  `make test`.
# Everything installs from this repo's files into .venv, pinned by constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.installed

.PHONY: setup demo train test lint bench colcon lock clean

setup: $(STAMP)

$(STAMP): setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt pip setuptools wheel
	# torch first, exact version: the CPU build is served for 2.13.0 only.
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[panda,ros,bench,sweep,dev,onnx,record]'
	touch $(STAMP)

## The main job: sim robot + policy server over real DDS, shipped bundle, K episodes.
demo: setup
	$(BIN)/rl-control demo

## A short training run that writes a policy bundle and a learning curve.
train: setup
	$(BIN)/rl-control train --config config/pendulum_sac.yaml --out runs/pendulum_sac

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src test bench launch

bench: setup
	$(BIN)/python bench/run_all.py

colcon: setup
	cd ros2_ws && ../$(BIN)/colcon build --symlink-install

lock:
	$(PIP) freeze --all | grep -v -E '^(-e |rl.control)' | sed 's/+cpu//' | sort -f > constraints.txt

clean:
	rm -rf $(VENV) ros2_ws/build ros2_ws/install ros2_ws/log
