"""`rl-control bench-reach --engine ros`: the reach benchmark through sim_robot and policy_server.

Both nodes run as separate processes over real DDS (a private domain, localhost only): the
Franka-faithful `sim_robot` (franka fidelity, the first registered interface that serves the
bundle's action type: trajectory for velocity bundles, effort for effort bundles; the bundle's
task) plays the goals of the goal file in order, and the policy server serves the bundle with
the same robot profile. By default in lockstep on /clock
(the sim advances one control period per command: fast and independent of host load); with
`realtime=True` on the wall clock, as a real arm runs. Every goal is played exactly once: the
episodes counted start after the server is active, and the goal file wraps around.
"""
from __future__ import annotations

from collections.abc import Callable
import json
import os
from pathlib import Path
import random
import tempfile
from typing import Any

import numpy as np

from rl_control.envs.tasks import task_for_bundle
from rl_control.robots.command_interfaces import interface_for_action
from rl_control.ros.processes import private_env, spin_until, start_node, stop_process


def run_over_ros(bundle: str, spec: dict[str, Any], robot: str, goals: np.ndarray,
                 randomized: bool, say: Callable[..., None], realtime: bool = False,
                 log_dir: str | None = None, state_topic: str = '',
                 episodes_file: str | None = None, episode_s: float = 4.0) -> dict[str, Any]:
    """Run every goal once; returns {'summary': ..., 'episodes': [...]}.

    `episodes_file`: sim_robot's `goals_file` as given (a pick-and-place episodes file: the
    cube's start pose with each goal, envs/pick_bench.py) instead of one written from `goals`.
    A task with an object (pick and place) also has sim_robot publish the finger joints on the
    server's joint-state topic (docs/pick_place.md, "Things to set").

    The server loads the robot's parameter file (config/policy_server[_ROBOT].yaml: for the FR3
    the 1 kHz `franka/joint_states`), `state_topic` overrides its joint-state topic (e.g. the
    FR3's 30 Hz merged `joint_states`).
    """
    from rl_control.ros.paths import server_params_file

    if randomized:
        raise ValueError('--engine ros runs nominal dynamics: sim_robot has no randomization')
    iface = bundle_interface(spec)
    task = task_for_bundle(spec)
    if iface.streamed and not realtime:  # a stream is many commands per period: no lockstep
        say(f'bench-reach: {iface.name} commands are streamed at 1 kHz; running in real time')
        realtime = True
    env = private_env(random.SystemRandom().randint(101, 199))
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                            'ROS_LOCALHOST_ONLY')})
    goals_file = episodes_file
    if goals_file is None:
        with tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False) as f:
            f.write('goals:\n' + ''.join(f'  - [{x:.6f}, {y:.6f}, {z:.6f}]\n'
                                          for x, y, z in goals))
            goals_file = f.name
    logs = Path(log_dir or tempfile.mkdtemp(prefix='bench_reach_'))
    logs.mkdir(parents=True, exist_ok=True)
    sim = {'robot': robot, 'fidelity': 'franka', 'command_type': iface.name, 'task': task.name,
           'goals_file': goals_file, 'episode_s': episode_s, 'publish_clock': not realtime,
           'publish_rate_hz': 1000.0 if realtime else 25.0}
    if getattr(task, 'object_message', None):
        sim['gripper_state_topic'] = state_topic or 'joint_states'
    # the robot's parameter file names its trajectory controller's topic: the bundle's own
    # interface picks the topic sim_robot listens on (an effort bundle: the effort controller)
    srv: dict[str, Any] = {'robot': robot, 'bundle': os.path.abspath(bundle),
                           'command_type': iface.name, 'autostart': True,
                           'command_topic': iface.default_topic(robot)}
    if state_topic:
        srv['joint_state_topic'] = state_topic
    if not realtime:
        # In lockstep the clock stands still while the sim computes a period: a loaded host
        # makes that gap long on the steady clock, which the real-time backstop would take for
        # a dead /clock (and brake with a plan for a time the sim has already passed).
        srv.update({'use_sim_time': True, 'trigger': 'state', 'backstop_s': 30.0})
    procs = []
    results: list[dict[str, Any]] = []
    try:
        procs.append(start_node('rl_control.ros.sim_robot', sim, logs / 'sim_robot.log', env))
        procs.append(start_node('rl_control.ros.policy_server', srv, logs / 'policy_server.log',
                                env, params_file=server_params_file(robot)))
        results = _collect(len(goals), procs, realtime, say, episode_s)
    finally:
        for p in reversed(procs):
            stop_process(p)
        if episodes_file is None:
            os.unlink(goals_file)
    summary = task.summarize(results)
    summary.update(engine='ros', robot=robot, randomized=False, lockstep=not realtime,
                   state_topic=state_topic or 'from the parameter file',
                   rejected=sum(r.get('rejected', 0) for r in results), logs=str(logs))
    return {'summary': summary, 'episodes': results}


def run_pick_over_ros(bundle: str, spec: dict[str, Any] | None, cubes: np.ndarray,
                      goals: np.ndarray, say: Callable[..., None], realtime: bool = False,
                      log_dir: str | None = None) -> dict[str, Any]:
    """The same episodes through sim_robot (`task: pick_place`) and the policy server over DDS.

    `run_over_ros` with these episodes as sim_robot's episode file (the cube from the file, not
    its sampler), 6 s episodes; in lockstep on /clock unless `realtime`. The measures are
    envs/pick_bench.py's.
    """
    import yaml

    from rl_control.envs.pick_bench import EPISODE_S, make_env

    if spec is None:
        raise ValueError("--engine ros serves a bundle: the scripted pick is not a bundle")
    make_env(spec, False).close()  # a pick-and-place bundle, or the error that says why not
    with tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False) as f:
        yaml.safe_dump({'episodes': [{'cube': [float(v) for v in c],
                                      'goal': [float(v) for v in g]}
                                     for c, g in zip(cubes, goals, strict=True)]}, f)
    try:
        out = run_over_ros(bundle, spec, spec.get('robot') or 'panda', goals, False, say,
                           realtime=realtime, log_dir=log_dir, episodes_file=f.name,
                           episode_s=EPISODE_S)
    finally:
        os.unlink(f.name)
    for r in out['episodes']:  # sim_robot plays the file in order, wrapping around
        start = cubes[r['episode'] % len(cubes)]
        r['solved_at_start'] = bool(np.linalg.norm(start[:3] - np.asarray(r['goal']))
                                    <= r['success_distance'])
    eps = out['episodes']
    out['summary'].update(
        policy='bundle', episode_s=EPISODE_S,
        success_distance=float(spec.get('success_distance') or 0.05),
        hand_rejected=sum(int(r.get('hand_rejected') or 0) for r in eps),
        solved_at_start=sum(r['solved_at_start'] for r in eps))
    return out


def bundle_interface(spec: dict[str, Any]) -> Any:
    """The first registered command interface that serves the bundle's action type.

    A Cartesian action (`ee_velocity`) is served by the interfaces of its joint type.
    """
    from rl_control.contract.actions import action_type

    name = (spec.get('action') or {}).get('type') or 'joint_velocity'
    return interface_for_action(action_type(name).command_type)


def _collect(n: int, procs: list[Any], realtime: bool, say: Callable[..., None],
             episode_s: float = 4.0) -> list[dict[str, Any]]:
    import rclpy
    from rclpy.node import Node
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from rl_control.ros import qos

    rclpy.init(args=[])
    node = Node('rl_control_bench_reach')
    got: list[dict[str, Any]] = []
    node.create_subscription(String, '/sim_robot/episode_result',
                             lambda m: got.append(json.loads(m.data)), qos.RESULTS)
    try:
        first = 0
        if realtime:  # the server is active once commands flow; then a fresh episode
            client = node.create_client(Trigger, '/sim_robot/reset_episode')
            spin_until(node, lambda: client.wait_for_service(timeout_sec=0.0), 60, procs)
            spin_until(node, lambda: False, 3.0, procs)
            fut = client.call_async(Trigger.Request())
            spin_until(node, fut.done, 10, procs)
            first = int(fut.result().message.split()[1])
        deadline = 120 + n * (2 * episode_s if realtime else 4.0)

        def done() -> bool:
            counted = [r for r in got if r['episode'] >= first]
            if counted and len(counted) % 10 == 0 and counted[-1] is not getattr(done, 'last',
                                                                                 None):
                done.last = counted[-1]  # type: ignore[attr-defined]
                say(f'  {len(counted)}/{n} episodes')
            return len(counted) >= n

        if not spin_until(node, done, deadline, procs):
            raise RuntimeError(f'only {len(got)} of {n} episodes in {deadline:.0f} s')
        return [r for r in got if r['episode'] >= first][:n]
    finally:
        node.destroy_node()
        rclpy.shutdown()
