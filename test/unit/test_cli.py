"""`rl-control` CLI: train writes a run directory, eval --json ends with a JSON line."""
import json
import os
from pathlib import Path
import subprocess
import sys

import pytest
import yaml

from rl_control.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, '-m', 'rl_control.cli', *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp('run')
    cfg = out / 'cfg.yaml'
    cfg.write_text(yaml.safe_dump({
        'env': 'Pendulum-v1', 'algo': 'sac', 'seed': 0, 'total_steps': 400,
        'eval': {'every': 200, 'episodes': 2},
        'algo_kwargs': {'hidden_sizes': [16, 16], 'batch_size': 32, 'learning_starts': 100}}))
    proc = cli('train', '--config', str(cfg), '--out', str(out / 'r'), '--no-progress',
               '--set', 'total_steps=300')
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / 'r', proc


def test_train_writes_run_directory(trained):
    run, proc = trained
    for name in ('progress.csv', 'learning_curve.png', 'bundle/policy.yaml',
                 'bundle/actor.safetensors', 'checkpoints/latest'):
        assert (run / name).is_file(), name
    assert list((run / 'tb').glob('events.out.tfevents.*'))
    assert str(run / 'bundle') in proc.stdout
    spec = yaml.safe_load((run / 'bundle/policy.yaml').read_text())
    assert spec['trained_with']['total_steps'] == 300  # the --set override took effect
    assert '--set total_steps=300' in spec['trained_with']['command']
    header = (run / 'progress.csv').read_text().splitlines()[0].split(',')
    assert {'step', 'wall_s', 'eval_mean_return', 'eval_std_return', 'success_rate',
            'critic_loss'} <= set(header)


def test_eval_json_last_line(trained):
    run, _ = trained
    proc = cli('eval', str(run / 'bundle'), '--episodes', '3', '--json', '--seed', '5')
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['episodes'] == 3 and result['success_rate'] is None
    assert -2000 < result['mean_return'] < 0 and result['std_return'] >= 0
    again = cli('eval', str(run / 'bundle'), '--episodes', '3', '--json', '--seed', '5')
    assert json.loads(again.stdout.strip().splitlines()[-1]) == result  # deterministic


def test_eval_json_is_last_even_with_pybullet_chatter(tmp_path):
    """panda-gym's pybullet printf()s to stdout from C; the JSON must still come last."""
    pytest.importorskip('panda_gym')
    import numpy as np

    from rl_control.bundle.io import save_bundle
    from rl_control.envs.factory import env_metadata, make_env
    from rl_control.train.config import config_from_dict

    env = make_env('PandaReach-v3')
    meta = env_metadata(env, 'PandaReach-v3')
    env.close()

    class Zero:
        def export_actor(self):
            n = meta['obs_dim']
            return ({'kind': 'mlp', 'layers': [[n, 3]], 'activation': 'relu', 'output': 'tanh'},
                    {'l0.weight': np.zeros((3, n), np.float32),
                     'l0.bias': np.zeros(3, np.float32)})

    cfg = config_from_dict({'env': 'PandaReach-v3', 'algo': 'sac', 'total_steps': 1})
    save_bundle(tmp_path / 'b', Zero(), None, meta, cfg, None, 'test')
    proc = cli('eval', str(tmp_path / 'b'), '--episodes', '2', '--json')
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['success_rate'] is not None and result['episodes'] == 2


def test_eval_broken_bundle_is_one_line_error(tmp_path, capsys):
    assert main(['eval', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert 'policy.yaml' in err and 'missing' in err and 'Traceback' not in err


def test_eval_unknown_env_suggests(trained, capsys):
    run, _ = trained
    assert main(['eval', str(run / 'bundle'), '--env', 'Pendulum-v0']) == 2
    assert "did you mean 'Pendulum-v1'" in capsys.readouterr().err


def test_eval_on_an_env_that_refuses_the_bundles_env_options_is_one_line(capsys):
    bundle = ROOT / 'models' / 'panda_reach_sac'
    assert main(['eval', str(bundle), '--env', 'Pendulum-v1', '--episodes', '1']) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'Traceback' not in err
    assert "option 'robot'" in err and 'rl_control/FrankaReach' in err


def test_parser_has_all_subcommands():
    parser = build_parser()
    for command in ('train', 'eval', 'demo', 'sim', 'serve'):
        assert parser.parse_args([command, *(['--config', 'x'] if command == 'train' else
                                             ['b'] if command == 'eval' else [])]).command == \
            command


def test_ros_subcommand_missing_module_is_a_clear_message(monkeypatch, capsys):
    import rl_control.cli as cli_mod

    monkeypatch.setitem(cli_mod.ROS_COMMANDS, 'demo', ('rl_control.ros.no_such_node', 'x'))
    assert main(['demo', '--foo']) == 1
    err = capsys.readouterr().err
    assert 'rl_control.ros.no_such_node' in err and 'Traceback' not in err


def test_ros_subcommand_passes_arguments(monkeypatch, tmp_path):
    import rl_control.cli as cli_mod

    pkg = tmp_path / 'fake_ros_node.py'
    pkg.write_text('seen = []\ndef main(argv):\n    seen.append(argv)\n    return 3\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli_mod.ROS_COMMANDS, 'serve', ('fake_ros_node', 'x'))
    assert main(['serve', '--bundle', 'models/x', '--ros-args', '-r', 'a:=b']) == 3
    import fake_ros_node
    assert fake_ros_node.seen == [['--bundle', 'models/x', '--ros-args', '-r', 'a:=b']]


def test_every_script_the_makefile_and_run_all_name_exists():
    import re
    import sys

    root = Path(__file__).resolve().parents[2]
    scripts = re.findall(r'\$\(BIN\)/python (\S+\.py)', (root / 'Makefile').read_text())
    assert 'bench/run_all.py' in scripts
    for s in scripts:
        assert (root / s).is_file(), f'Makefile runs {s}, which does not exist'
    sys.path.insert(0, str(root / 'bench'))
    try:
        import run_all
    finally:
        sys.path.pop(0)
    for name, (full, quick) in run_all.BENCHMARKS.items():
        assert (root / full[0]).is_file() and (root / quick[0]).is_file(), name


def test_eval_accepts_a_run_directory_and_bundle_errors_are_one_line(tmp_path, capsys):
    import numpy as np

    from rl_control.bundle import save_bundle
    from rl_control.envs.panda_reach import panda_contract

    class Actor:
        def export_actor(self):
            rng = np.random.default_rng(0)
            return ({'kind': 'mlp', 'layers': [[20, 8], [8, 7]], 'activation': 'relu',
                     'output': 'tanh'},
                    {'l0.weight': rng.normal(0, 0.3, (8, 20)), 'l0.bias': np.zeros(8),
                     'l1.weight': rng.normal(0, 0.3, (7, 8)), 'l1.bias': np.zeros(7)})

    c = panda_contract()
    meta = {'env_id': 'rl_control/PandaJointReach-v0', 'contract': c, 'obs_dim': 20,
            'act_dim': 7, 'action_low': [-1.0] * 7, 'action_high': [1.0] * 7,
            'obs_terms': [{'name': 'observation', 'size': 17},
                          {'name': 'desired_goal', 'size': 3}]}
    run_dir = tmp_path / 'run'
    save_bundle(run_dir / 'bundle', Actor(), None, meta, {'algo': 'sac'}, None, 'test')
    assert main(['eval', str(run_dir), '--episodes', '1', '--json']) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])['episodes'] == 1
    spec = run_dir / 'bundle' / 'policy.yaml'
    spec.write_text(spec.read_text().replace('activation: relu', 'activation: swish'))
    assert main(['eval', str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'policy.yaml' in err and 'activation' in err
