"""trainer: `core.loop.train` hosted in a ROS node.

Training runs in the main thread (torch, MuJoCo and signal handling all prefer it); the node's
executor spins in a background thread so services answer while the loop runs. The loop is
steered only through its thread-safe `TrainControl` handle, so nothing in here can corrupt the
training state.

- `~/progress` (std_msgs/String, JSON): one message per evaluation (the progress row), per
  checkpoint (`{"event": "checkpoint", "path": ..., "step": ...}`) and at the end
  (`{"event": "end", "bundle": ..., "steps": ...}`).
- `~/save_checkpoint` (std_srvs/Trigger): a checkpoint (and bundle) at the next env step; the
  reply comes once it is written (or after 60 s saying it is still pending).
- `~/stop` (std_srvs/Trigger): stop at the next env step; the final checkpoint, bundle and plot
  are still written.
- SIGINT / SIGTERM: same as ~/stop (without the final evaluation), by the handlers every
  training installs (train/signals.py): the bundle, then a resumable checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path
import sys
import threading
from typing import Any

import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
import rclpy.executors
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String
from std_srvs.srv import Trigger

from rl_control.ros import conversions as conv
from rl_control.ros import qos
from rl_control.ros.hosting import flush
from rl_control.ros.params import declare
from rl_control.serve.settings import param


@dataclass
class TrainerParams:
    """Parameters of `trainer`."""

    config: str = param('', 'training config YAML (config/*.yaml)')
    out: str = param('', 'run directory (checkpoints/, bundle/, progress.csv, tb/)')
    resume: bool = param(False, 'continue from out/checkpoints/latest')
    set: list[str] = param([], 'KEY=VALUE config overrides (as `rl-control train --set`)')


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if hasattr(v, 'item'):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v if isinstance(v, int | float | str | bool | type(None)) else str(v)
    return out


class TrainerNode(Node):
    """Publishes progress and forwards service requests to the training loop."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('trainer', **kwargs)
        from rl_control.train.learn import TrainControl

        self.p = declare(self, TrainerParams)
        self.control = TrainControl()
        self._progress = self.create_publisher(String, '~/progress', qos.RESULTS)
        self._ckpt_written = threading.Condition()
        self._ckpt_count = 0
        # Reentrant, on a multi-threaded executor: a save that waits for the checkpoint never
        # delays ~/stop (or another request) behind it.
        group = ReentrantCallbackGroup()
        self.create_service(Trigger, '~/save_checkpoint', self._on_save, callback_group=group)
        self.create_service(Trigger, '~/stop', self._on_stop, callback_group=group)

    def publish(self, obj: dict[str, Any]) -> None:
        """Publish one JSON progress message (callable from the training thread)."""
        try:
            self._progress.publish(conv.json_string(_plain(obj)))
        except Exception as exc:  # noqa: BLE001 - never let reporting break training
            self.get_logger().warning(f'progress not published: {exc}', throttle_duration_sec=5)

    def callbacks(self) -> Any:
        """The `core.loop.Callback` that reports into this node."""
        from rl_control.train.learn import Callback

        node = self

        class _Report(Callback):
            def on_eval(self, info: dict[str, Any]) -> None:
                node.publish({'event': 'eval', **info})

            def on_checkpoint(self, path: Path, step: int) -> None:
                node.publish({'event': 'checkpoint', 'path': str(path), 'step': int(step)})
                with node._ckpt_written:
                    node._ckpt_count += 1
                    node._ckpt_written.notify_all()

            def on_end(self, result: Any) -> None:
                node.publish({'event': 'end', 'bundle': str(result.bundle_dir),
                              'steps': int(result.steps), 'stopped': bool(result.stopped)})

        return _Report()

    def _on_save(self, request: Trigger.Request, response: Trigger.Response
                 ) -> Trigger.Response:
        with self._ckpt_written:
            before = self._ckpt_count
            self.control.request_checkpoint()
            ok = self._ckpt_written.wait_for(lambda: self._ckpt_count > before, timeout=60.0)
        response.success = bool(ok)
        response.message = 'checkpoint written' if ok else 'checkpoint requested, not yet written'
        return response

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response
                 ) -> Trigger.Response:
        self.control.request_stop()
        response.success, response.message = True, 'stopping at the next env step'
        return response


def main(argv: list[str] | None = None) -> int:
    """Entry point `trainer`: `trainer --ros-args -p config:=... -p out:=...`."""
    from rl_control.train.config import load_config
    from rl_control.train.learn import train

    args = sys.argv if argv is None else ['trainer', *argv]
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = TrainerNode()
    log = node.get_logger()
    p = node.p
    if not p.config or not p.out:
        log.fatal('parameters config and out are required')
        node.destroy_node()
        rclpy.shutdown()
        return 2

    executor = rclpy.executors.MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, name='trainer-executor', daemon=True)
    spinner.start()
    rc = 0
    try:
        cfg = load_config(p.config, list(p.set))
        log.info(f'training {p.config} -> {p.out} (resume={p.resume})')
        result = train(cfg, p.out, resume=p.resume, progress=False,
                       callbacks=[node.callbacks()], control=node.control,
                       command='trainer ' + ' '.join(args[1:]))
        log.info(f'done: {result.steps} steps, bundle {result.bundle_dir}')
    except Exception as exc:  # noqa: BLE001 - report, then exit non-zero
        log.fatal(f'training failed: {exc}')
        rc = 1
    finally:
        flush(node._progress)  # the 'end' event reaches its reliable subscribers before exit
        executor.shutdown(timeout_sec=1.0)
        spinner.join(timeout=2.0)
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return rc


if __name__ == '__main__':
    sys.exit(main())
