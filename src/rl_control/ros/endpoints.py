"""The policy server's topics: commands out, goals and joint states in, their recording.

Kept apart from the node so that `policy_server.py` reads as lifecycle and callbacks. The
subscriptions live on the bare control node (`hosting.control_node`); the command publisher is
a lifecycle publisher of the host, on `~/shadow_command` in shadow mode whatever
`command_topic` says, so a shadow server can never reach a controller. A bundle that observes
an object subscribes `object_pose_topic` (geometry_msgs/PoseStamped, sensor-data QoS as the
joint states: a tracker's frames are sensor data); one with a gripper entry publishes its hand
commands on `gripper_command_topic` (`~/shadow_gripper_command` in shadow mode), as
ros/policy_server.py documents.
"""

from __future__ import annotations

from collections.abc import Callable
import time
from typing import Any

from geometry_msgs.msg import PoseStamped
from rclpy.serialization import serialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from rl_control.robots.command_interfaces import command_interface
from rl_control.ros import conversions as conv
from rl_control.ros import qos
from rl_control.ros.recorder import TopicRecorder
from rl_control.serve.settings import ServeSettings

DISCOVERY_S = 1.0
"""How long after start-up the graph may still lack a publisher that was already there (DDS
discovery of a remote participant): an activation this soon after configure (autostart) waits
until then for `conflict`."""
UNKNOWN = '<node not yet known>'  # rmw's _NODE_NAME_UNKNOWN_: the name arrives after the endpoint


class Endpoints:
    """Command publisher, goal and joint-state subscriptions, recorder; `close()` undoes all."""

    def __init__(self, host: Any, control: Any, p: ServeSettings, goal_message: str,
                 on_goal: Callable[[Any], None], on_state: Callable[[Any], None],
                 on_robot_state: Callable[[Any], None] | None = None,
                 on_object_pose: Callable[[Any], None] | None = None,
                 gripper: bool = False) -> None:
        """Create them; `goal_message` is the task's goal kind (conversions.GOAL_MESSAGES).

        `on_object_pose`: subscribe the object pose; `gripper`: publish hand commands.
        """
        # the recorder first: a bad record_dir fails configure before anything is created
        self.rec = TopicRecorder(p.record_dir, p.record_segment_s) if p.record_dir else None
        self.created = time.monotonic()
        self.host, self.control, self.clock = host, control, control.get_clock()
        self.command = conv.COMMAND_MESSAGES[command_interface(p.command_type).message]
        self.goal = conv.GOAL_MESSAGES[goal_message]
        topic = '~/shadow_command' if p.shadow else p.default_command_topic()
        self.pub = host.create_lifecycle_publisher(self.command.type, topic, qos.COMMAND)
        self.topics = {'goal': host.resolve_topic_name(p.goal_topic),
                       'state': host.resolve_topic_name(p.joint_state_topic),
                       'command': self.pub.topic_name}
        # goal first: a new episode's goal is taken before its state
        self.subs = [control.create_subscription(self.goal.type, self.topics['goal'], on_goal,
                                                 qos.GOAL),
                     control.create_subscription(JointState, self.topics['state'], on_state,
                                                 qos.SENSOR)]
        if p.robot_state_topic and on_robot_state is not None:  # serve/robot_errors.py
            self.topics['robot_state'] = host.resolve_topic_name(p.robot_state_topic)
            self.subs.append(control.create_subscription(
                conv.robot_state_type(p.robot_state_type), self.topics['robot_state'],
                on_robot_state, 10))
        if on_object_pose is not None:  # serve/object_pose.py
            self.topics['object_pose'] = host.resolve_topic_name(p.object_pose_topic)
            self.subs.append(control.create_subscription(
                PoseStamped, self.topics['object_pose'], on_object_pose, qos.SENSOR))
        self.gripper_pub = None
        if gripper:  # serve/hand.py: sent on change
            self.gripper_pub = host.create_lifecycle_publisher(
                String, '~/shadow_gripper_command' if p.shadow else p.gripper_command_topic,
                qos.GRIPPER)
            self.topics['gripper'] = self.gripper_pub.topic_name

    def conflict(self, settle: bool = False) -> str:
        """'' or 'another publisher on <topic>: <nodes>' (see `other_publishers`).

        `settle`: keep looking until DISCOVERY_S after the endpoints were created, and for a
        found endpoint's node name (the graph learns it after the endpoint) as long again.
        """
        others = self.other_publishers()
        end = max(self.created, time.monotonic() if others else 0.0) + DISCOVERY_S
        while settle and time.monotonic() < end and (
                not others or any(n.endswith(UNKNOWN) for n in others)):
            time.sleep(0.05)
            others = self.other_publishers()
        return f'another publisher on {self.pub.topic_name}: {", ".join(others)}' \
            if others else ''

    def other_publishers(self) -> list[str]:
        """Other nodes publishing on the command topic (fully qualified names).

        Two nodes commanding one arm fight each other's trajectories; ros2_controllers takes
        whichever message came last. This host's own publisher is one endpoint under its name:
        a second one under the same name is another node named like it.
        """
        own = (self.host.get_name(), self.host.get_namespace())
        found, mine = [], 0
        for info in self.host.get_publishers_info_by_topic(self.pub.topic_name):
            if (info.node_name, info.node_namespace) == own and not mine:
                mine += 1
                continue
            ns = info.node_namespace.rstrip('/')
            found.append(UNKNOWN if 'UNKNOWN' in info.node_name else f'{ns}/{info.node_name}')
        return sorted(found)

    def encode(self, command: Any) -> Any:
        """The command message of what the loop computed (a trajectory, or stream values)."""
        return self.command.encode(command)

    def publish(self, msg: Any, serialized: bytes | None = None) -> None:
        """Send a command and record it, serialized once (`serialized`: done already)."""
        raw = serialize_message(msg) if serialized is None else serialized
        self.pub.publish(raw)
        self.record('command', msg, raw)

    def publish_gripper(self, cmd: Any) -> None:
        """Send a hand command (robots/franka_hand.py GripperCommand) and record it."""
        msg = conv.gripper_string(cmd)
        self.gripper_pub.publish(msg)
        self.record('gripper', msg)

    def record(self, what: str, msg: Any, serialized: bytes | None = None) -> None:
        """Record `msg` on topic `what` ('state', 'goal', 'command' or a topic name)."""
        if self.rec is not None:
            self.rec.record(self.topics.get(what, what), msg, self.clock.now().nanoseconds,
                            serialized)

    def close(self) -> None:
        """Destroy the subscriptions and the publisher; close the recording."""
        for sub in self.subs:
            self.control.destroy_subscription(sub)
        self.host.destroy_lifecycle_publisher(self.pub)
        if self.gripper_pub is not None:
            self.host.destroy_lifecycle_publisher(self.gripper_pub)
        if self.rec is not None:
            self.rec.close()
