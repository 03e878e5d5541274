"""The command-interface registry: one name per way of commanding an arm, one part per layer.

A command interface (`trajectory`, `velocity`, `effort`) is one `CommandInterface` entry. Its
fields name the part each layer runs for it, so the layers stay apart (a lower layer never
imports a higher one) and still agree:
- contract: `action_type`, what the policy outputs and how it is shaped
  (contract/actions.py: joint velocity targets through the Ruckig shaper, or joint torques
  through the torque shaper);
- robots: `controller` and `hardware`, the ros2_control controller that receives the commands
  and the command interface it writes (here: `CONTROLLERS`, `HARDWARE`; robots/franka.py runs
  them in the simulated robot);
- serve: `output`, how the serving loop turns plans into commands: one message per tick,
  or a stream, and what a stop is (serve/outputs.py `OUTPUTS`);
- ros: `message`, the ROS message type on the command topic (ros/conversions.py
  `COMMAND_MESSAGES`), and `topic`, the controller's default topic.
An interface built from parts that exist is one `register_command_interface` call; a new kind
of part is one class in the layer that runs it, added to that layer's table
(docs/ARCHITECTURE.md, "Add a command interface"). Nothing outside these tables branches on an
interface's name.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl_control.robots.controllers import ForwardCommandController
from rl_control.robots.jtc import JointTrajectoryController
from rl_control.robots.trajectory import JointTrajectory, starts_at


@dataclass(frozen=True)
class CommandInterface:
    """One way of commanding the arm, as each layer sees it (module docstring)."""

    name: str
    action_type: str
    controller: str
    hardware: str
    output: str
    message: str
    topic: str
    """The controller's command topic ('{robot}' is replaced by the robot's name)."""
    streamed: bool
    """The server sends a stream (up to 1 kHz) rather than one message per policy tick."""

    def default_topic(self, robot: str) -> str:
        """The command topic of this interface's controller on `robot`."""
        return self.topic.format(robot=robot)

    def make_controller(self, joint_names: Sequence[str], dt: float, **options: Any) -> Any:
        """The simulated controller (options: the trajectory controller's parameters)."""
        return CONTROLLERS[self.controller].make(joint_names, dt, **options)

    @property
    def hardware_interface(self) -> HardwareInterface:
        """What the simulated robot does with the controller's command (`HARDWARE`)."""
        return HARDWARE[self.hardware]

    @property
    def tells_fresh(self) -> bool:
        """Whether a command says where it starts (torques do not: robots/episode_guard.py)."""
        return CONTROLLERS[self.controller].fresh is not None or not self.hardware_interface.torque

    def fresh_after_reset(self, cmd: Any, t: float, joint_names: tuple[str, ...],
                          q: np.ndarray, tolerance: float) -> bool:
        """Whether `cmd`, arriving at `t` after a reset to rest at `q`, was meant for it."""
        judge = CONTROLLERS[self.controller].fresh
        if judge is not None:
            return judge(cmd, t, joint_names, q, tolerance)
        return self.hardware_interface.fresh(cmd, q, tolerance)


# -- the robots layer's parts ------------------------------------------------------------------
def _jtc(joint_names: Sequence[str], dt: float, **options: Any) -> JointTrajectoryController:
    return JointTrajectoryController(joint_names, update_period=dt, **options)


def _forward(joint_names: Sequence[str], dt: float, **options: Any) -> ForwardCommandController:
    if options:
        raise TypeError(f'controller options {sorted(options)} apply to the trajectory '
                        'controller only')
    return ForwardCommandController(len(joint_names))


@dataclass(frozen=True)
class ControllerKind:
    """A ros2_control controller: how to emulate it, and how to tell a command's start."""

    make: Callable[..., Any]
    """(joint names, update period [s], **parameters) -> the emulated controller."""
    fresh: Callable[..., bool] | None = None
    """(command, arrival, joint names, q, tolerance) -> whether the command starts at rest at q
    (None: a forward controller's value says it, `HardwareInterface.fresh`)."""
    takes_trajectories: bool = False
    """Its commands are JointTrajectory messages (else flat value arrays)."""
    options: tuple[str, ...] = ()
    """The controller parameters its emulation takes (keyword arguments of `make`)."""

    def accepts(self, payload: Any) -> bool:
        """Whether `payload` is the kind of command this controller subscribes to."""
        return isinstance(payload, JointTrajectory) == self.takes_trajectories


CONTROLLERS = {'joint_trajectory_controller': ControllerKind(
                   _jtc, starts_at, True, ('interpolate_from_desired_state',
                                           'allow_nonzero_velocity_at_trajectory_end',
                                           'allow_trajectory_replacement')),
               'forward_command_controller': ControllerKind(_forward)}


@dataclass(frozen=True)
class HardwareInterface:
    """A command interface of franka_hardware (ros2_control): what a written value does.

    `torque`: the value is a joint torque on top of gravity compensation (the arm is driven by
    it, franka_hardware may rate-limit it); otherwise the value moves the joint reference
    (`position` sets it, `velocity` integrates it) and the arm tracks it.
    """

    name: str
    torque: bool
    rest_command: str
    """What the interface holds at activation: 'position' (the measured q) or 'zero'."""
    rest_velocity: float | None = None
    """A forward command whose |values| are all below this is "stay" (None: not comparable)."""
    zero_when_silent: bool = False
    """An ideal robot (no controller semantics) stops when its server falls silent."""

    @property
    def sets_position(self) -> bool:
        """The value is a joint position (else a velocity or a torque)."""
        return self.rest_command == 'position'

    def initial(self, q: np.ndarray) -> np.ndarray:
        """The interface's value at activation (a held position, or zeros)."""
        return np.array(q, np.float64) if self.rest_command == 'position' else np.zeros(len(q))

    def fresh(self, cmd: Any, q: np.ndarray, tolerance: float) -> bool:
        """A forward command after a reset: does it start at rest at `q`? (not for torques)."""
        values = np.asarray(cmd, np.float64)
        if values.shape != np.shape(q):
            return True  # malformed: deliver, the controller reports it
        if self.sets_position:
            return float(np.max(np.abs(values - q))) <= tolerance
        return float(np.max(np.abs(values))) <= self.rest_velocity

    def silence(self, n: int) -> list[float] | None:
        """What an ideal robot writes when its server falls silent (None: it holds the last)."""
        return [0.0] * n if self.zero_when_silent else None


HARDWARE = {h.name: h for h in (HardwareInterface('position', False, 'position'),
                                 HardwareInterface('velocity', False, 'zero', 1e-3, True),
                                 HardwareInterface('effort', True, 'zero'))}
"""franka_hardware's command interfaces (franka_hardware_interface.cpp exports these three)."""

# -- the registry ------------------------------------------------------------------------------
COMMAND_INTERFACES: dict[str, CommandInterface] = {}
COMMAND_INTERFACE_NAMES = COMMAND_INTERFACES.keys()
"""A live view: an interface registered at run time is a valid choice everywhere at once."""


def register_command_interface(iface: CommandInterface) -> CommandInterface:
    """Make `iface` known by its name; its parts must exist in this layer's tables."""
    if iface.controller not in CONTROLLERS or iface.hardware not in HARDWARE:
        raise ValueError(f'command interface {iface.name!r}: unknown controller '
                         f'{iface.controller!r} or hardware interface {iface.hardware!r}')
    if COMMAND_INTERFACES.get(iface.name, iface) is not iface:
        raise ValueError(f'a command interface called {iface.name!r} is registered already')
    COMMAND_INTERFACES[iface.name] = iface
    return iface


def command_interface(name: str) -> CommandInterface:
    """The interface called `name`."""
    try:
        return COMMAND_INTERFACES[name]
    except KeyError:
        raise ValueError(f'command_type must be one of {sorted(COMMAND_INTERFACES)}, got '
                         f'{name!r}') from None


def interface_for_action(action_type: str) -> CommandInterface:
    """The first registered interface that serves `action_type` (trajectory for velocities)."""
    for iface in COMMAND_INTERFACES.values():
        if iface.action_type == action_type:
            return iface
    raise ValueError(f'no command interface serves action type {action_type!r}')


TRAJECTORY = register_command_interface(CommandInterface(
    'trajectory', 'joint_velocity', 'joint_trajectory_controller', 'position', 'trajectory',
    'JointTrajectory', '{robot}_position_trajectory_controller/joint_trajectory',
    streamed=False))
"""A joint_trajectory_controller on the position interface: one message per tick that ends at
rest (serve/commands.py), so the arm brakes by itself if the server dies. The controller is
this package's `<robot>_position_trajectory_controller`, not `<robot>_arm_controller`:
franka_ros2's franka_fr3_moveit_config names its own JTC on the effort interface
`fr3_arm_controller` (config/fr3_ros_controllers.yaml, franka_ros2 v2.5.0); both can then be
loaded side by side (config/franka_ros2/<name>.yaml)."""
VELOCITY = register_command_interface(CommandInterface(
    'velocity', 'joint_velocity', 'forward_command_controller', 'velocity', 'motion_stream',
    'Float64MultiArray', 'velocity_controller/commands', streamed=True))
"""A forward velocity controller: the shaped velocity streamed (held forever if it stops)."""
EFFORT = register_command_interface(CommandInterface(
    'effort', 'joint_effort', 'forward_command_controller', 'effort', 'torque_stream',
    'Float64MultiArray', 'effort_controller/commands', streamed=True))
"""A forward effort controller: rate-limited torques streamed, a damping torque to stop."""
