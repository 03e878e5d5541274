"""How the node executables run: executors, the services thread, signals, `--help`."""
from __future__ import annotations

from collections.abc import Callable
import dataclasses
import functools
import os
import sys
import threading
import traceback
import typing
from typing import Any

import rclpy
import rclpy.executors

from rl_control.ros.signals import spin_until_signal


def locked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a method under `self._lock`: two executor threads call into one node."""
    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return fn(self, *args, **kwargs)
    return wrapper


def guarded(where: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`locked`, and an exception is handed to `self.fault(where, exc)` instead of raised.

    A callback that raises inside an rclpy executor ends the spin, and with it the node: a
    node that commands an arm must brake and stay up for `~/reset` instead, whatever a message
    or a bug did.
    """
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                try:
                    return fn(self, *args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - see the docstring
                    self.fault(where, exc)
                    return None
        return wrapper
    return decorate


def control_node(node: Any) -> Any:
    """A bare node for `node`'s control path (same namespace, clock and context).

    rclpy's Python executors walk every entity of a node on every wake-up, and a lifecycle
    node has ~30 (services, parameters); at 1 kHz that walk, not the policy, dominated the
    state->command latency. The bare node takes no global ROS arguments (no duplicate node name
    from `-r __node:=`); topic remaps reach it because the host resolves the topic names, and
    the host's remap of /clock (two lockstep robots under namespaces: `-r /clock:=/robot1/clock`)
    is given to it explicitly, since its time source subscribes by itself.
    """
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    sim_time = bool(node.get_parameter('use_sim_time').value)
    clock = node.resolve_topic_name('/clock')
    remap = [] if clock == '/clock' else ['--ros-args', '-r', f'/clock:={clock}']
    return Node(f'{node.get_name()}_state_input', namespace=node.get_namespace(),
                context=node.context, use_global_arguments=False, cli_args=remap,
                start_parameter_services=False, enable_rosout=False,
                parameter_overrides=[Parameter('start_type_description_service', value=False),
                                     Parameter('use_sim_time', value=sim_time)])


def flush(publisher: Any, timeout_s: float = 1.0) -> None:
    """Wait until reliable subscribers have every message; best effort.

    A command still queued in DDS when the process ends would be lost.
    """
    if publisher is None:
        return
    from rclpy.duration import Duration

    try:
        publisher.wait_for_all_acked(Duration(seconds=timeout_s))
    except Exception:  # noqa: BLE001 - on the way out
        pass


def make_executor(kind: str | None = None) -> rclpy.executors.Executor:
    """SingleThreadedExecutor, or rclpy's EventsExecutor with RL_CONTROL_EXECUTOR=events.

    The events executor dispatches from C++ without rebuilding a wait set per callback; it is
    experimental in rclpy (and in the rclpy 9.1.2 PyPI build it delivers no subscription
    callbacks), hence opt-in.
    """
    kind = kind or os.environ.get('RL_CONTROL_EXECUTOR', 'single')
    if kind == 'events':
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    return rclpy.executors.SingleThreadedExecutor()


def run_with_background(node: Any, control_node: Any, executor: rclpy.executors.Executor,
                        control_executor: rclpy.executors.Executor,
                        on_stop: Callable[[], None],
                        on_background_error: Callable[[str], None]) -> None:
    """Spin `node` (services) in a background thread and `control_node` here until a signal.

    rclpy's Python executors walk every entity of a node on each wake-up; keeping the control
    path (subscriptions, timers) on a bare node in the main thread keeps its latency low. If
    the background thread dies, `on_background_error` is told (the host brakes the arm): an
    arm must never keep moving while its e-stop service is gone.
    """
    stop_bg = threading.Event()

    def background() -> None:
        try:
            executor.add_node(node)
            while not stop_bg.is_set() and rclpy.ok(context=node.context):
                executor.spin_once(timeout_sec=0.1)
        except Exception:  # noqa: BLE001 - report, the control path brakes
            if not stop_bg.is_set():
                text = traceback.format_exc(limit=3)
                node.get_logger().fatal(f'services thread died: {text}')
                on_background_error('services thread died')

    bg = threading.Thread(target=background, name=f'{node.get_name()}-services', daemon=True)
    bg.start()

    def stop() -> None:
        stop_bg.set()
        bg.join(timeout=5.0)
        on_stop()

    try:
        spin_until_signal(control_node, control_executor, stop)
    finally:
        stop_bg.set()
        if bg.is_alive():
            bg.join(timeout=5.0)
        control_executor.shutdown()
        executor.shutdown()


def print_help_if_asked(argv: list[str], prog: str, settings: type, doc: str | None) -> bool:
    """`prog --help` (before --ros-args) prints the parameters and returns True: no node starts."""
    head = argv[1:argv.index('--ros-args')] if '--ros-args' in argv else argv[1:]
    if not {'-h', '--help'} & set(head):
        return False
    hints = typing.get_type_hints(settings)
    lines = [f'usage: {prog} [--ros-args [--params-file FILE] [-p NAME:=VALUE ...] '
             '[-r FROM:=TO ...]]', '', (doc or '').strip().split('\n')[0], '', 'parameters:']
    for f in dataclasses.fields(settings):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        extra = []
        if f.metadata.get('range'):
            extra.append(f'range {list(f.metadata["range"])}')
        if f.metadata.get('choices'):
            extra.append('one of ' + '|'.join(f.metadata['choices']))
        if f.metadata.get('read_only') is False:
            extra.append('live')
        typ = getattr(hints[f.name], '__name__', str(hints[f.name]))
        lines.append(f'  {f.name} ({typ}, default {default!r}'
                     + (f'; {"; ".join(extra)}' if extra else '') + ')')
        lines.append(f'      {f.metadata.get("help", "")}')
    print('\n'.join(lines), file=sys.stdout)
    return True


def run_lifecycle_node(node_cls: type, settings: type, doc: str | None, prog: str,
                       argv: list[str] | None) -> int:
    """main() of a lifecycle node with `autostart`: --help, init, run, brake on the way out."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.signals import SignalHandlerOptions

    args = sys.argv if argv is None else [prog, *argv]
    if print_help_if_asked(args, prog, settings, doc):
        return 0
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    sys.setswitchinterval(0.0005)  # a 1 kHz path shares the GIL with the services thread
    try:
        node = node_cls()
    except ValueError as exc:  # a parameter out of range or not among the choices
        print(f'{prog}: {exc}', file=sys.stderr)
        rclpy.shutdown()
        return 2
    rc = 0
    if node.p.autostart:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            node.get_logger().fatal('autostart: configure failed (see above)')
            rc = 1
        elif node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            rc = 1
    if rc == 0:
        control = make_executor()

        def on_stop() -> None:
            node.pump = lambda dt: control.spin_once(timeout_sec=dt)
            node.trigger_shutdown()  # an active node brakes to rest first

        run_with_background(node, node.state_node, make_executor(), control, on_stop,
                            node.fail)
    node.state_node.destroy_node()
    node.destroy_node()
    if rclpy.ok():
        rclpy.shutdown()
    return rc


def blocking_service(host: Any, srv_type: Any, name: str,
                     callback: Callable[[Any, Any], Any]) -> Any:
    """`<host>/<name>` served on a node and thread of its own: its callback may wait.

    For a service that answers once the robot has done something (~/move_to_start): in the
    host's services thread it would hold up ~/estop meanwhile. The node is bare, as
    `control_node`'s; its thread is stopped and joined when the context shuts down (a thread
    still waiting in the executor at exit aborts the process on Jazzy's rclpy).
    """
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    node = Node(f'{host.get_name()}_{name}', namespace=host.get_namespace(),
                context=host.context, use_global_arguments=False,
                start_parameter_services=False, enable_rosout=False,
                parameter_overrides=[Parameter('start_type_description_service', value=False)])
    node.create_service(srv_type, f'{host.get_fully_qualified_name()}/{name}', callback)
    executor = rclpy.executors.SingleThreadedExecutor(context=host.context)
    executor.add_node(node)

    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set() and rclpy.ok(context=host.context):
            try:
                executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - the context is going down
                return

    thread = threading.Thread(target=spin, name=f'{host.get_name()}-{name}', daemon=True)
    thread.start()

    def end() -> None:
        stop.set()
        thread.join(timeout=2.0)
        executor.shutdown(timeout_sec=0.5)

    host.context.on_shutdown(end)
    return node
