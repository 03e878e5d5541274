"""The demo's own rclpy node: episode results, the server's diagnostics, episode resets."""
from __future__ import annotations

from collections.abc import Sequence
import json
import re
import subprocess
from typing import Any

from rl_control.ros.processes import spin_until


class DemoMonitor:
    """The demo's own rclpy node: episode results, diagnostics, the episode-reset client."""

    def __init__(self, ns: str = '') -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        import rclpy
        from rclpy.node import Node
        from rclpy.signals import SignalHandlerOptions
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        from rl_control.ros import qos
        from rl_control.ros.conversions import diagnostic_values

        self.rclpy = rclpy
        rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node('rl_control_demo', namespace=ns or '/')
        self.server_status = f'{ns}/policy_server: policy'
        self.results: list[dict[str, Any]] = []
        self.diag: dict[str, str] = {}
        self._values = diagnostic_values
        self.node.create_subscription(String, f'{ns}/sim_robot/episode_result', self._on_result,
                                      qos.RESULTS)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag,
                                      qos.DIAGNOSTICS)
        self.reset_client = self.node.create_client(Trigger, f'{ns}/sim_robot/reset_episode')
        self.Trigger = Trigger

    def _on_result(self, msg: Any) -> None:
        self.results.append(json.loads(msg.data))

    def _on_diag(self, msg: Any) -> None:
        for st in msg.status:
            if st.name == self.server_status:
                self.diag = self._values(st)

    def spin_until(self, pred: Any, timeout: float, procs: Sequence[subprocess.Popen] = ()
                   ) -> bool:
        """Spin until pred() or timeout; RuntimeError early if a child process died."""
        return spin_until(self.node, pred, timeout, procs)

    def reset_episode(self, timeout: float = 10.0) -> int:
        """Ask the sim for a fresh episode; returns its episode number."""
        if not self.reset_client.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f'{self.reset_client.srv_name} not available')
        fut = self.reset_client.call_async(self.Trigger.Request())
        self.rclpy.spin_until_future_complete(self.node, fut, timeout_sec=timeout)
        if not fut.done():
            raise RuntimeError(f'{self.reset_client.srv_name} did not answer')
        m = re.search(r'episode (\d+)', fut.result().message)
        return int(m.group(1)) if m else 0

    def close(self) -> None:
        """Destroy the node; shut rclpy down."""
        self.node.destroy_node()
        if self.rclpy.ok():
            self.rclpy.shutdown()
