"""Record a node's topics into a segmented rosbag2 (`robots/recording.py`) off the hot path.

The control callbacks only serialize (rclpy's C serializer, a few microseconds) and enqueue;
a daemon thread writes the MCAP segments. The queue is bounded (QUEUE_SIZE): when the writer
falls behind (a slow disk), new messages are dropped and counted (`dropped`, on /diagnostics),
never waited for, so recording can never stall the control thread. A crash loses what the
queue held and the segment being written; every closed segment stays a bag `ros2 bag` reads.
"""
from __future__ import annotations

import queue
import threading
from typing import Any

from rclpy.serialization import serialize_message

from rl_control.robots.recording import BagRecorder

QUEUE_SIZE = 20000  # messages: 20 s of 1 kHz joint states


def type_name(msg: Any) -> str:
    """'sensor_msgs/msg/JointState' for a sensor_msgs.msg.JointState instance."""
    return f"{type(msg).__module__.split('.')[0]}/msg/{type(msg).__name__}"


class TopicRecorder:
    """`record(topic, msg, t_ns)` from any thread; `close()` flushes and closes the bag."""

    def __init__(self, root: str, segment_s: float = 1.0) -> None:
        self.bag = BagRecorder(root, segment_s=segment_s)
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self.error: str | None = None
        self.dropped = 0
        self._thread = threading.Thread(target=self._drain, name='recorder', daemon=True)
        self._thread.start()

    def record(self, topic: str, msg: Any, t_ns: int, serialized: bytes | None = None) -> None:
        """Queue one message, stamped `t_ns` (the node's clock when it was heard or sent).

        `serialized`: `msg` already serialized (a command that was sent as bytes).
        """
        raw = serialize_message(msg) if serialized is None else serialized
        try:
            self._queue.put_nowait((topic, type_name(msg), int(t_ns), raw))
        except queue.Full:
            self.dropped += 1

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            if self.error is None:
                try:
                    self.bag.write(*item)
                except Exception as exc:  # disk full, permissions: report, keep serving
                    self.error = f'{type(exc).__name__}: {exc}'
        self.bag.close()

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued and close the last segment."""
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:  # the writer is stuck: leave it (a daemon thread)
            return
        self._thread.join(timeout_s)
