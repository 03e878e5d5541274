"""Sweeps and multi-seed runs on a local Ray (2 CPUs, one session for the whole module).

Short Pendulum runs (a few hundred steps): what is tested is the machinery (trials as run
directories, a crashing trial reported while the sweep goes on, the tables, the best config,
the seeds report), not learning.
"""
import csv
import json
from pathlib import Path
import subprocess
import sys

import pytest

from rl_control import cli
from rl_control.train.cluster import MissingExtra, require
from rl_control.train.config import ConfigError, load_config
from rl_control.train.sweep import load_space, run_sweep

ROOT = Path(__file__).resolve().parents[2]
PENDULUM = str(ROOT / 'config' / 'pendulum_sac.yaml')
SHORT = ['total_steps=300', 'eval.every=100', 'eval.episodes=2', 'tensorboard=false',
         'algo_kwargs.learning_starts=50', 'algo_kwargs.batch_size=32']


@pytest.fixture(scope='module')
def ray_local():
    ray = pytest.importorskip('ray')
    pytest.importorskip('optuna')
    ray.init(address='local', num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 1024 * 1024, logging_level='WARNING')
    try:
        yield ray
    finally:
        ray.shutdown()


def _space(tmp_path, text):
    path = tmp_path / 'space.yaml'
    path.write_text(text)
    return str(path)


def _table(out):
    with open(Path(out) / 'results.csv', newline='') as f:
        return list(csv.DictReader(f))


def test_cli_sweep_two_trials(ray_local, tmp_path, capsys):
    space = _space(tmp_path, 'algo_kwargs.lr: {type: loguniform, low: 3.0e-4, high: 3.0e-3}\n'
                             'algo_kwargs.hidden_sizes: {type: choice, values: [[16], [32]]}\n')
    out = tmp_path / 'sweep'
    sets = [a for s in SHORT + ['algo_kwargs.hidden_sizes=[16]'] for a in ('--set', s)]
    status = cli.main(['sweep', '--config', PENDULUM, '--space', space, '--trials', '2',
                       '--out', str(out), '--budget-s', '45', *sets])
    assert status == 0, capsys.readouterr()
    rows = _table(out)
    assert [r['trial'] for r in rows] == ['0', '1']
    assert list(rows[0])[:6] == ['trial', 'status', 'metric', 'run_dir', 'algo_kwargs.lr',
                                 'algo_kwargs.hidden_sizes']
    # trial 0 is the base config itself (lr 1e-3, [16]); 300 steps never solve: the budget
    assert rows[0]['algo_kwargs.lr'] == '0.001' and rows[0]['algo_kwargs.hidden_sizes'] == '[16]'
    for r in rows:
        assert r['status'] in ('unsolved', 'stopped') and float(r['metric']) == 45.0
        assert (Path(r['run_dir']) / 'progress.csv').is_file()
    assert (Path(rows[0]['run_dir']) / 'bundle' / 'policy.yaml').is_file()
    assert (out / 'sweep.png').stat().st_size > 0
    best = load_config(out / 'best_config.yaml')  # what `rl-control train --config` reads
    assert best.env == 'Pendulum-v1' and best.total_steps == 300
    assert best.target_return == -200  # the base config's own, unchanged
    printed = capsys.readouterr().out
    assert 'best:' in printed and 'results.csv' in printed


def test_a_crashing_trial_is_reported_and_the_sweep_goes_on(ray_local, tmp_path):
    # Return mode (no target). ent_coef 'oops' passes the space check (a choice may hold any
    # value) but not the config the trial builds: that trial errors, the other one trains.
    space = _space(tmp_path, "algo_kwargs.ent_coef: {type: choice, values: [auto, oops]}\n")
    out = tmp_path / 'crash'
    result = run_sweep(PENDULUM, space, 2, out, overrides=SHORT + ['target_return=null'],
                       include_base=False, early_stop=False,
                       points=[{'algo_kwargs.ent_coef': 'oops'},
                               {'algo_kwargs.ent_coef': 'auto'}], say=lambda *a: None)
    rows = {r['trial']: r for r in _table(out)}
    assert rows['0']['status'] == 'error' and rows['0']['metric'] == ''
    assert 'ConfigError' in rows['0']['message'] and 'ent_coef' in rows['0']['message']
    assert (Path(rows['0']['run_dir']) / 'error.txt').is_file()
    assert rows['1']['status'] == 'done' and float(rows['1']['metric']) < 0
    assert result.mode == 'max' and result.best['trial'] == 1
    assert load_config(out / 'best_config.yaml').algo_config.ent_coef == 'auto'


def test_cli_seeds_report_json(ray_local, tmp_path, capsys):
    out = tmp_path / 'seeds'
    sets = [a for s in SHORT + ['target_return=null'] for a in ('--set', s)]
    status = cli.main(['train', '--config', PENDULUM, '--seeds', '0', '1', '--out', str(out),
                       '--json', *sets])
    assert status == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {'iqm', 'ci95', 'seeds'} <= set(report)
    low, high = report['ci95']
    finals = [s['final_return'] for s in report['seeds']]
    assert [s['seed'] for s in report['seeds']] == [0, 1]
    assert report['iqm'] == pytest.approx(sum(finals) / 2)  # n=2: the IQM is the mean
    assert min(finals) <= low <= report['iqm'] <= high <= max(finals)
    for s in report['seeds']:
        assert s['success_rate'] is None  # Pendulum reports none
        assert Path(s['run_dir']) == out / f'seed_{s["seed"]}'
        assert (out / f'seed_{s["seed"]}' / 'bundle' / 'policy.yaml').is_file()
    assert (out / 'seeds.png').is_file() and (out / 'seeds.csv').is_file()


# -- no Ray needed --------------------------------------------------------------------------
BASE = load_config(PENDULUM)


@pytest.mark.parametrize('text, message', [
    ('algo_kwargs.lr: {type: logunifrom, low: 1.0e-4, high: 1.0e-2}',
     "algo_kwargs.lr: type: 'logunifrom' is not one of"),
    ('algo_kwargs.lrr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}',
     "algo_kwargs.lrr: sac has no hyperparameter 'lrr'; did you mean 'lr'?"),
    ('learning_rate: {type: uniform, low: 0, high: 1}', "learning_rate: unknown config key"),
    ('algo_kwargs.lr: {type: uniform, low: 1.0e-3}', 'algo_kwargs.lr: high: required'),
    ('algo_kwargs.lr: {type: uniform, low: 0.1, high: 0.01}', 'must be below high'),
    ('algo_kwargs.lr: {type: loguniform, low: 0, high: 0.01}', 'a log scale needs low > 0'),
    ('algo_kwargs.batch_size: {type: uniform, low: 32, high: 256}',
     'algo_kwargs.batch_size: takes an integer: use type int'),
    ('algo_kwargs.batch_size: {type: int, low: 32.5, high: 256}', 'low: expected an integer'),
    ('algo_kwargs.tau: {type: uniform, low: 0.01, high: 0.1, values: [1]}',
     'algo_kwargs.tau: values: not a field of a uniform distribution'),
    ('algo_kwargs.hidden_sizes: {type: int, low: 16, high: 64}',
     'algo_kwargs.hidden_sizes: takes tuple, not a number: use type choice'),
    ('algo_kwargs.activation: {type: choice, values: []}', 'values: expected a non-empty list'),
    ('seed: {type: int, low: 0, high: 9}', 'seed: the seeds are not searched'),
    ('eval.evry: {type: int, low: 100, high: 500}', "eval has no key 'evry'"),
    ('total_steps.x: {type: int, low: 1, high: 2}', 'total_steps is a single value'),
    ('algo_kwargs.lr: 0.001', 'algo_kwargs.lr: expected a mapping'),
    ('[1, 2]', 'the top level must be a mapping'),
])
def test_space_errors_name_the_file_and_key(tmp_path, text, message):
    path = _space(tmp_path, text + '\n')
    with pytest.raises(ConfigError) as info:
        load_space(path, BASE)
    assert str(info.value).startswith(f'{path}: ') and message in str(info.value)
    assert '\n' not in str(info.value)


def test_a_good_space_parses(tmp_path):
    path = _space(tmp_path, 'algo_kwargs.lr: {type: loguniform, low: 1e-4, high: 1e-2}\n'
                            'algo_kwargs.learning_starts: {type: int, low: 100, high: 1000, '
                            'log: true}\n'
                            'env_kwargs.g: {type: uniform, low: 9.0, high: 10.5}\n'
                            'eval.every: {type: choice, values: [250, 500]}\n')
    params = load_space(path, BASE)
    assert [(p.key, p.type) for p in params] == [
        ('algo_kwargs.lr', 'loguniform'), ('algo_kwargs.learning_starts', 'int'),
        ('env_kwargs.g', 'uniform'), ('eval.every', 'choice')]
    assert params[0].low == 1e-4  # YAML 1.1 reads 1e-4 as a string: accepted as a number


def test_cli_space_error_is_one_line_before_ray_starts(tmp_path, capsys):
    path = _space(tmp_path, 'algo_kwargs.lr: {type: normal, low: 0, high: 1}\n')
    status = cli.main(['sweep', '--config', PENDULUM, '--space', path, '--trials', '2'])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "algo_kwargs.lr: type: 'normal'" in err[0]


def test_without_the_extra_commands_fail_in_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'ray', None)  # `import ray` now raises ImportError
    hint = r"needs the `sweep` extra .*pip install -e '\.\[sweep\]'"
    with pytest.raises(MissingExtra, match=hint):
        require('rl-control sweep')
    status = cli.main(['train', '--config', PENDULUM, '--seeds', '0', '1'])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1 and 'sweep' in err[0] and 'pip install' in err[0]


def test_package_and_cli_never_import_ray_or_optuna():
    code = ('import sys, rl_control, rl_control.cli, rl_control.train.sweep, '
            'rl_control.train.seeds, rl_control.train.learn\n'
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'optuna'}))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == '[]'


def _signal_when(paths, signum=None):
    """SIGINT this process once every path exists (the runs are training)."""
    import signal
    import threading
    import time

    def wait():
        end = time.monotonic() + 120
        while not all(p.is_file() for p in paths) and time.monotonic() < end:
            time.sleep(0.1)
        signal.raise_signal(signum or signal.SIGINT)

    threading.Thread(target=wait, daemon=True).start()


def test_ctrl_c_of_train_seeds_stops_every_run_with_its_bundle_and_checkpoint(
        ray_local, tmp_path, capsys):
    from rl_control.train.persistence import latest_checkpoint, load_checkpoint

    out = tmp_path / 'seeds'
    long = [s for s in SHORT if not s.startswith('total_steps')]
    sets = [a for s in long + ['target_return=null', 'total_steps=1000000']
            for a in ('--set', s)]
    _signal_when([out / f'seed_{s}' / 'progress.csv' for s in (0, 1)])
    status = cli.main(['train', '--config', PENDULUM, '--seeds', '0', '1', '--out', str(out),
                       '--json', *sets])
    assert status == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not report['failed']
    for s in (0, 1):
        run = out / f'seed_{s}'
        ckpt = latest_checkpoint(run / 'checkpoints')
        steps = load_checkpoint(ckpt)['counters']['env_steps']
        assert 100 <= steps < 1000000
        assert (run / 'bundle' / 'policy.yaml').stat().st_mtime_ns <= ckpt.stat().st_mtime_ns
    assert not (out / '.stop').exists()


def test_ctrl_c_of_a_sweep_stops_each_trials_run_with_its_bundle_and_checkpoint(
        ray_local, tmp_path, capsys):
    from rl_control.train.persistence import latest_checkpoint

    space = _space(tmp_path, 'algo_kwargs.lr: {type: loguniform, low: 3.0e-4, high: 3.0e-3}\n')
    out = tmp_path / 'sweep'
    long = [s for s in SHORT if not s.startswith('total_steps')]
    sets = [a for s in long + ['total_steps=1000000', 'target_return=null']
            for a in ('--set', s)]
    _signal_when([out / 'trial_000' / 'progress.csv'])
    status = cli.main(['sweep', '--config', PENDULUM, '--space', space, '--trials', '2',
                       '--out', str(out), '--no-early-stop', *sets])
    assert status == 0, capsys.readouterr()
    run = out / 'trial_000'
    ckpt = latest_checkpoint(run / 'checkpoints')
    assert (run / 'bundle' / 'policy.yaml').stat().st_mtime_ns <= ckpt.stat().st_mtime_ns
    assert _table(out)[0]['status'] == 'done'
    assert not (out / '.stop').exists()
