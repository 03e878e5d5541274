"""The `rl-control` argument parser (apart so that tests and docs can inspect it)."""
from __future__ import annotations

import argparse

from rl_control.robots.profiles import ROBOT_NAMES

ROS_COMMANDS = {
    'demo': ('rl_control.ros.demo', 'sim robot + policy server over DDS, shipped bundle'),
    'sim': ('rl_control.ros.sim_robot', 'the Franka-faithful simulated Panda/FR3 node'),
    'serve': ('rl_control.ros.policy_server', 'the policy server node for a bundle'),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (separate so tests and docs can inspect it)."""
    parser = argparse.ArgumentParser(
        prog='rl-control',
        description='Train actor-critic policies (SAC, TD3, DDPG, A2C, PPO) in simulation, '
                    'evaluate policy bundles, and serve them as ROS 2 nodes.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='examples:\n'
               '  rl-control train --config config/pendulum_sac.yaml --out runs/pendulum\n'
               '  rl-control train --config config/pendulum_sac.yaml --set algo_kwargs.lr=3e-4\n'
               '  rl-control train --config config/pendulum_sac.yaml --out runs/pendulum '
               '--resume\n'
               '  rl-control train --config config/pendulum_sac.yaml --seeds 0 1 2 3 4 --json\n'
               '  rl-control sweep --config config/pendulum_sac.yaml --space SPACE.yaml '
               '--trials 16\n'
               '  rl-control eval runs/pendulum/bundle --episodes 20 --json\n'
               '  rl-control demo')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    p = sub.add_parser('train', help='train from a YAML config (task x algorithm)',
                       description='Train per a config file; writes a run directory with '
                                   'progress.csv, TensorBoard logs (tb/), checkpoints/, the '
                                   'policy bundle (bundle/) and learning_curve.png.')
    p.add_argument('--config', required=True, metavar='PATH',
                   help='YAML config, e.g. config/pendulum_sac.yaml')
    p.add_argument('--set', dest='overrides', action='append', default=[],
                   metavar='KEY=VALUE',
                   help='override a config value with a dotted key, parsed as YAML '
                        '(repeatable), e.g. --set total_steps=5000 --set algo_kwargs.lr=1e-3')
    p.add_argument('--out', metavar='DIR',
                   help='run directory (default: runs/<config name>)')
    p.add_argument('--resume', action='store_true',
                   help='continue from <out>/checkpoints/latest (same result as an '
                        'uninterrupted run)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('--check', action='store_true',
                   help='validate the config (and env id) and exit without training')
    p.add_argument('--seeds', type=int, nargs='+', metavar='SEED',
                   help='train these seeds in parallel on Ray (<out>/seed_<n>/), then report '
                        'the IQM and bootstrap 95%% CI of the final eval return (and success '
                        "rate); needs the 'sweep' extra")
    p.add_argument('--address', metavar='ADDR',
                   help='with --seeds: the Ray cluster to use (default: a local Ray on all '
                        'cores)')
    p.add_argument('--json', action='store_true',
                   help='with --seeds: print the report as one JSON object on the last '
                        'stdout line')

    p = sub.add_parser('sweep', help='hyperparameter sweep on Ray Tune (Optuna + ASHA)',
                       description='Search a config\'s hyperparameters: Optuna proposes, ASHA '
                                   'stops poor trials early, each trial is a run directory '
                                   'under --out. Metric: time to a confirmed target_return when '
                                   'the config has one, else the final eval return. Writes '
                                   'results.csv, sweep.png and best_config.yaml.',
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog='SPACE file (dotted config keys, as for --set):\n'
                              '  algo_kwargs.lr: {type: loguniform, low: 3.0e-4, high: 3.0e-3}\n'
                              '  algo_kwargs.tau: {type: uniform, low: 0.01, high: 0.1}\n'
                              '  algo_kwargs.learning_starts: {type: int, low: 200, high: 1000}\n'
                              '  algo_kwargs.hidden_sizes: {type: choice, values: [[64, 64], '
                              '[128, 128]]}')
    p.add_argument('--config', required=True, metavar='PATH', help='base YAML config')
    p.add_argument('--space', required=True, metavar='SPACE.yaml', help='the search space')
    p.add_argument('--trials', type=int, default=8, help='trials to run (default 8)')
    p.add_argument('--seeds-per-trial', type=int, default=1, metavar='K',
                   help="each trial trains the config's seed .. seed+K-1 (default 1)")
    p.add_argument('--address', metavar='ADDR',
                   help='Ray cluster address (default: a local Ray on all cores)')
    p.add_argument('--out', metavar='DIR', help='output folder (default runs/sweep_<config>)')
    p.add_argument('--set', dest='overrides', action='append', default=[],
                   metavar='KEY=VALUE', help='override a base config value (repeatable)')
    p.add_argument('--budget-s', type=float, default=600.0, metavar='S',
                   help='with a target_return: the wall-time budget of one seed; unsolved '
                        'seeds count at it (default 600)')
    p.add_argument('--no-early-stop', action='store_true', help='no ASHA: every trial runs out')
    p.add_argument('--no-base', action='store_true',
                   help="do not try the base config's own values first")
    p.add_argument('--search-seed', type=int, default=0, help="Optuna's seed (default 0)")
    p.add_argument('--cpus', type=int, metavar='N',
                   help='CPUs of the local Ray (default: all cores)')

    p = sub.add_parser('eval', help='evaluate a policy bundle (deterministic actions)',
                       description='Run a bundle for N episodes on its task (or --env) and '
                                   'report mean/std return and success rate.')
    p.add_argument('bundle', metavar='BUNDLE', help='bundle folder (with policy.yaml)')
    p.add_argument('--episodes', type=int, default=10, help='episodes (default 10)')
    p.add_argument('--env', metavar='ENV_ID', help="env id (default: the bundle's task)")
    p.add_argument('--seed', type=int, default=0,
                   help='episode i starts from seed SEED+i (default 0)')
    p.add_argument('--json', action='store_true',
                   help='print the result as one JSON object on the last stdout line')
    p.add_argument('--record', action='store_true',
                   help="write the result (and this command) into the bundle's policy.yaml "
                        'under `evaluations`')

    p = sub.add_parser('bench-reach', help='the standard Franka reach benchmark of a bundle',
                       description='100 fixed goals (config/reach_goals.yaml), 4 s each from '
                                   'rest at home, through the serving command path. Success = '
                                   'held: within the distance and at rest (fastest joint < 0.02 '
                                   'rad/s, end effector < 5 mm/s) over the last second; at 1, '
                                   "2 and 5 cm and the bundle's success distance. Also: time to "
                                   'settle, final and last-second distance, last-second path, '
                                   'path ratio, final joint speed, reached at some moment, '
                                   'reflexes.')
    p.add_argument('bundle', metavar='BUNDLE', help='bundle folder or run directory')
    p.add_argument('--engine', choices=('mujoco', 'pybullet', 'ros'), default='mujoco',
                   help='mujoco / pybullet: in process; ros: sim_robot + policy_server over '
                        'DDS (default mujoco)')
    p.add_argument('--robot', choices=sorted(ROBOT_NAMES), help="default: the bundle's robot")
    p.add_argument('--randomized', action='store_true',
                   help="the bundle's domain randomization (default: nominal dynamics)")
    p.add_argument('--goals', metavar='FILE', help='goal set (default config/reach_goals.yaml)')
    p.add_argument('--episodes', type=int, default=0, help='first N goals only (0: all)')
    p.add_argument('--json', action='store_true',
                   help='print the summary as one JSON object on the last stdout line')
    p.add_argument('--out', metavar='FILE', help='also write the summary and episodes (JSON)')
    p.add_argument('--plot', metavar='PNG',
                   help='also plot distance and joint speed over time, and the settle times')
    p.add_argument('--realtime', action='store_true',
                   help='ros engine: on the wall clock (default: lockstep on /clock)')
    p.add_argument('--state-topic', default='', metavar='TOPIC',
                   help="ros engine: the server's joint-state topic (default: the robot's "
                        'parameter file, e.g. franka/joint_states for the FR3)')
    add_bench_pick_parser(sub)
    add_export_parsers(sub)

    p = sub.add_parser('gap', help='sim-to-real gap: a recording (or PyBullet) vs the MuJoCo '
                       'twin', description='Replays a recording (policy_server record_dir, '
                       'or a rosbag2 bag) through the MuJoCo twin, or with --sim2sim drives a '
                       'bundle on PyBullet and MuJoCo; reports per-joint tracking error, the '
                       'command-to-motion latency, a plot, and exits 1 past the thresholds.')
    p.add_argument('source', metavar='BAG_OR_BUNDLE', help='recording folder / rosbag2 bag, or '
                   'a bundle with --sim2sim')
    p.add_argument('--sim2sim', action='store_true', help='SOURCE is a bundle: PyBullet vs '
                   'MuJoCo')
    p.add_argument('--robot', choices=sorted(ROBOT_NAMES), help='default: from the joint names '
                   "(recording) or the bundle's robot")
    p.add_argument('--episodes', type=int, default=10, help='--sim2sim: goals (default 10)')
    p.add_argument('--out', metavar='DIR', default='runs/gap', help='report folder')
    p.add_argument('--rms-threshold', type=float, default=0.02,
                   help='per-joint RMS tracking error allowed [rad] (default 0.02)')
    p.add_argument('--success-gap', type=float, default=0.05,
                   help='--sim2sim: success difference allowed (default 0.05 = 5 points)')
    p.add_argument('--json', action='store_true', help='last stdout line: the report as JSON')

    for name, (_module, text) in ROS_COMMANDS.items():
        p = sub.add_parser(name, help=f'{text} (needs ROS 2 Python packages)',
                           description=f'Runs {text}; arguments after the command go to it '
                                       '(try --help there).', add_help=False)
        p.add_argument('args', nargs=argparse.REMAINDER, help='arguments for the node')
    return parser


def add_bench_pick_parser(sub: argparse._SubParsersAction) -> None:
    """`bench-pick`: the pick-and-place benchmark (envs/pick_bench.py)."""
    p = sub.add_parser('bench-pick', help='the pick-and-place benchmark of a bundle or the '
                       'scripted pick', description='Fixed episodes (config/pick_episodes.yaml: '
                       "cube start pose and goal, drawn once from the task's samplers), 6 s "
                       'each from rest at home with the hand open, through the serving command '
                       'path on MuJoCo. Success = held: the cube within the success distance '
                       '(5 cm) of the goal and cube and arm at rest over the last second, no '
                       'drop. Also: placed at some moment, grasped, lifted, dropped, reflexes '
                       'and contact reflexes, time to place, final distance median and max.')
    p.add_argument('policy', metavar='POLICY',
                   help="a pick-and-place bundle folder (or run directory), or the word "
                        "'scripted': the scripted grasp-and-place (envs/scripted_pick.py), the "
                        'reference a learned policy must approach')
    p.add_argument('--engine', choices=('mujoco', 'ros'), default='mujoco',
                   help='mujoco: in process; ros: sim_robot (task pick_place) and the policy '
                        'server as separate processes over DDS (a bundle only)')
    p.add_argument('--realtime', action='store_true',
                   help='ros engine: on the wall clock as a real arm runs (default: lockstep '
                        'on /clock)')
    p.add_argument('--randomized', action='store_true',
                   help="domain randomization (the bundle's, or the env's default for "
                        "'scripted'; default: nominal dynamics)")
    p.add_argument('--episodes-file', metavar='FILE',
                   help='episode set (default config/pick_episodes.yaml)')
    p.add_argument('--episodes', type=int, default=100,
                   help='first N episodes of the file (default 100; 0: all)')
    p.add_argument('--json', action='store_true',
                   help='print the summary as one JSON object on the last stdout line')
    p.add_argument('--out', metavar='FILE', help='also write the summary and episodes (JSON)')
    p.add_argument('--plot', metavar='PNG',
                   help='also plot the cube-to-goal distance over time and the outcomes')


def add_export_parsers(sub: argparse._SubParsersAction) -> None:
    """`export` and `import-sb3`: the deploy formats (README, "Deploy formats")."""
    p = sub.add_parser('export', help="write a bundle's actor in another format (ONNX)",
                       description='Write the actor with its observation normalization as an '
                                   'ONNX graph (input: the raw contract observation, float32, '
                                   'any batch size; output: the action in [-1, 1]). Inside the '
                                   'bundle it is recorded in policy.yaml (exports.onnx), so '
                                   'the server can run it with `-p backend:=onnx`.')
    p.add_argument('bundle', metavar='BUNDLE', help='bundle folder (with policy.yaml)')
    p.add_argument('--format', required=True, choices=('onnx',), help='target format')
    p.add_argument('--out', metavar='FILE',
                   help='output file (default: BUNDLE/actor.onnx); a file outside the bundle '
                        'is a standalone copy and leaves policy.yaml as it is')
    p.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17)')

    p = sub.add_parser('import-sb3', help='turn a Stable-Baselines3 model into a bundle',
                       description='Convert a Stable-Baselines3 SAC, TD3, DDPG or PPO model '
                                   "(MLP policy) trained on ENV_ID into a policy bundle: the "
                                   "env's contract, the deterministic actor, and the "
                                   'observation normalization of a VecNormalize file. The '
                                   "bundle's actions are checked against SB3's "
                                   'predict(deterministic=True) before it is written. Nothing '
                                   'in the files is executed (docs/deploy_formats.md; the '
                                   'bundle holds no pickle).')
    p.add_argument('model', metavar='MODEL.zip', help='a model saved by SB3 `model.save`')
    p.add_argument('--env', required=True, metavar='ENV_ID',
                   help='the env id it was trained on, e.g. rl_control/PandaJointReach-v0')
    p.add_argument('--vecnormalize', metavar='FILE',
                   help='the VecNormalize statistics it was trained with (`vec_env.save`)')
    p.add_argument('--trust-pickle', action='store_true', help='unpickle a VecNormalize file '
                   'the safe reader refuses (it can execute code: trusted files only)')
    p.add_argument('--out', required=True, metavar='BUNDLE', help='bundle folder to write')
