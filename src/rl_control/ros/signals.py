"""Process-level signal handling shared by the node executables (rclpy only)."""
from __future__ import annotations

import signal
from typing import Any

import rclpy
import rclpy.executors


def spin_until_signal(node: Any, executor: rclpy.executors.Executor,
                      on_stop: Any = None, done: Any = None) -> None:
    """Spin until SIGINT/SIGTERM, then call `on_stop` while the context is still valid.

    rclpy's own signal handler shuts the context down first, after which nothing can be
    published; we need the opposite order (zero command, then shutdown), so main() starts rclpy
    without its handlers and this loop checks a flag set by ours. `done()` (optional) ends the
    loop too.
    """
    stop = {'flag': False}

    def handler(signum: int, frame: Any) -> None:
        stop['flag'] = True
        executor.wake() if hasattr(executor, 'wake') else None

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, handler)
    executor.add_node(node)
    try:
        while not stop['flag'] and rclpy.ok() and not (done is not None and done()):
            executor.spin_once(timeout_sec=0.1)
    finally:
        if on_stop is not None:
            on_stop()
        # Keep swallowing signals while the node shuts down: a terminal Ctrl-C reaches a node
        # twice under `ros2 launch` (once from the process group, once forwarded by launch),
        # and restoring Python's default handler here would turn the second into a
        # KeyboardInterrupt inside destroy_node(). `ros2 launch` still escalates to SIGKILL.
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
