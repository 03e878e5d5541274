# Two commands on a fresh machine (see README):  `make demo`  and  `make test`.
# Everything installs from this repo's files into .venv, pinned by constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.installed

.PHONY: setup demo train test test-jazzy lint bench colcon lock lock-jazzy clean

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

## The second leg: Jazzy's rclpy wheels (ros-jazzy-rclpy 7.1.6 for Python 3.11: Jazzy's API,
## not Python 3.12), the serving path only (no torch), in its own venv pinned by
## constraints-jazzy.txt: the integration tests (nodes over DDS) and the bring-up units.
JAZZY_VENV ?= .venv-jazzy
JAZZY_STAMP := $(JAZZY_VENV)/.installed
JAZZY_PKGS := ros-jazzy-rclpy ros-jazzy-rmw-fastrtps-cpp ros-jazzy-sensor-msgs \
	ros-jazzy-std-msgs ros-jazzy-geometry-msgs ros-jazzy-trajectory-msgs ros-jazzy-std-srvs \
	ros-jazzy-diagnostic-msgs ros-jazzy-lifecycle-msgs ros-jazzy-rosgraph-msgs numpy pyyaml \
	safetensors mujoco ruckig gymnasium matplotlib rosbags pytest pytest-timeout vermin

$(JAZZY_STAMP): constraints-jazzy.txt
	$(PYTHON) -m venv $(JAZZY_VENV)
	$(JAZZY_VENV)/bin/python -m pip install -q -c constraints-jazzy.txt $(JAZZY_PKGS)
	touch $(JAZZY_STAMP)

test-jazzy: $(JAZZY_STAMP)
	PYTHONPATH=$(CURDIR)/src $(JAZZY_VENV)/bin/python -m pytest -p no:cacheprovider \
		test/integration test/unit/test_bringup.py \
		--ignore=test/integration/test_trainer_node.py

lock-jazzy:
	{ grep '^#' constraints-jazzy.txt; $(JAZZY_VENV)/bin/python -m pip freeze --all \
		| grep -v -E '^(-e |rl.control)' | sort -f; } > constraints-jazzy.tmp
	mv constraints-jazzy.tmp constraints-jazzy.txt

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
