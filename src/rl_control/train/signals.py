"""SIGINT / SIGTERM during training: stop at the next step, keep the run (one path for all).

Every run stops the same way: `TrainControl.request_stop(signal)` (off-policy at the next env
step, on-policy at the end of the running rollout), after which it writes its bundle, then a
checkpoint, and returns normally. What asks:
- `learn.train` runs inside `stop_on_signals`, so `rl-control train` and the ROS trainer node
  stop on SIGINT / SIGTERM;
- `train --seeds` and `sweep` drive runs in Ray workers: their driver runs inside
  `stop_file_on_signals`, which writes a stop file into `--out`, and each run watches it
  (`watch_stop_file`; a Tune trainable runs in a worker thread, where no signal arrives).
A second signal in the same process, later than DUPLICATE_S after the first (a terminal's
Ctrl-C reaches every process of its group at once), is the user insisting: KeyboardInterrupt
ends the process at once; everything already written is complete (atomic writes).

Python delivers signals to the main thread only, so handlers are installed only there.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
import signal
import sys
import threading
import time
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_FILE = '.stop'
DUPLICATE_S = 2.0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def _on_signals(first: Callable[[str], None]) -> Iterator[None]:
    """While inside: the first SIGINT/SIGTERM calls `first(name)`; the old handlers after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    seen: list[float] = []

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if not seen:
            seen.append(time.monotonic())
            first(name)
        elif time.monotonic() - seen[0] > DUPLICATE_S:  # the user insists: quit now
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt(name)

    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def stop_on_signals(control: Any, say: Callable[[str], None] = _say) -> Iterator[None]:
    """While inside: SIGINT/SIGTERM -> `control.request_stop(name)` (module docstring)."""
    def first(name: str) -> None:
        say(f'{name}: stopping at the next step; the bundle, then a checkpoint, are written '
            '(again to quit at once)')
        control.request_stop(name)

    with _on_signals(first):
        yield


@contextmanager
def stop_file_on_signals(folder: str | Path, say: Callable[[str], None] = _say
                         ) -> Iterator[Path]:
    """Driver side: SIGINT/SIGTERM write `<folder>/.stop`, which every watching run obeys."""
    path = Path(folder) / STOP_FILE
    path.unlink(missing_ok=True)

    def first(name: str) -> None:
        say(f'{name}: stopping every run at its next step; each writes its bundle, then a '
            'checkpoint (again to quit at once)')
        path.write_text(name + '\n')

    try:
        with _on_signals(first):
            yield path
    finally:
        path.unlink(missing_ok=True)


def watch_stop_file(path: str | Path, control: Any, period_s: float = 0.2
                    ) -> Callable[[], None]:
    """Worker side: ask `control` to stop once `path` exists; returns the function ending it."""
    path, done = Path(path), threading.Event()

    def watch() -> None:
        while not done.wait(period_s):
            if path.exists():
                try:
                    name = path.read_text().strip()
                except OSError:  # removed in between: the driver is done
                    name = ''
                control.request_stop(name or 'SIGINT')
                return

    threading.Thread(target=watch, name='stop-file', daemon=True).start()
    return done.set
