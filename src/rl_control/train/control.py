"""How other code steers and observes a running `train`: control handle, callbacks, result.

Threads: `TrainControl` is the handle another thread (the ROS trainer node) uses to ask for a
stop or a checkpoint; the loop polls it once per env step, which costs one attribute read.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
import threading
from typing import Any


class TrainControl:
    """Thread-safe requests into a running `train` (e.g. from a ROS service callback)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._checkpoint = threading.Event()
        self.stop_signal: str | None = None  # 'SIGINT' / 'SIGTERM' when a signal asked

    def request_stop(self, signal: str | None = None) -> None:
        """Finish at the next env step: bundle, final checkpoint and plot are still written.

        `signal`: the signal that asked (signals.py); the run then skips its final evaluation.
        """
        if signal is not None and self.stop_signal is None:
            self.stop_signal = signal
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        """Whether a stop was requested."""
        return self._stop.is_set()

    def request_checkpoint(self) -> None:
        """Save a checkpoint (and a bundle) at the next env step."""
        self._checkpoint.set()

    def take_checkpoint_request(self) -> bool:
        """Consume a pending checkpoint request (loop side)."""
        if self._checkpoint.is_set():
            self._checkpoint.clear()
            return True
        return False


class Callback:
    """Hooks called from the training thread; override what you need.

    A plain callable passed in `callbacks` is treated as `on_eval`. Returning False from
    `on_eval` stops training (like `TrainControl.request_stop`).
    """

    def on_start(self, run: Any) -> None:
        """Once, before the first step; `run` is the `learn.Trainer`.

        For callbacks that measure the policy itself (`solve.SolveTracker`): `run.act(x)` is the
        current deterministic policy and `run.exclude_time(s)` takes time spent measuring off
        the run's clock.
        """

    def on_eval(self, info: dict[str, Any]) -> bool | None:
        """After each evaluation; `info` is the progress row (step, eval_mean_return, ...)."""
        return None

    def on_checkpoint(self, path: Path, step: int) -> None:
        """After a checkpoint file has been written (and `latest` points at it)."""

    def on_end(self, result: TrainResult) -> None:
        """Once, after the bundle and plot are written."""


class FnCallback(Callback):
    """A plain function used as `on_eval`."""

    def __init__(self, fn: Callable[[dict[str, Any]], Any]) -> None:
        self.fn = fn

    def on_eval(self, info: dict[str, Any]) -> bool | None:
        """Call the function with the progress row."""
        return self.fn(info)


@dataclass
class TrainResult:
    """Where things were written and how the run ended."""

    run_dir: Path
    bundle_dir: Path | None
    curve_png: Path | None
    steps: int
    wall_s: float
    last_eval: dict[str, Any] | None
    best_eval: dict[str, Any] | None
    reached_target: bool = False
    stopped: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None
    signal: str | None = None  # the signal that stopped the run, if one did
