"""Training never loses the run: signals, corrupt checkpoints, NaN, a second run, another seed."""
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from rl_control.algos.normalizer import RunningMeanStd
from rl_control.bundle.io import load_bundle
from rl_control.cli import main
from rl_control.train.config import config_from_dict
from rl_control.train.finite import NonFiniteError
from rl_control.train.learn import Callback, TrainControl, train
from rl_control.train.logger import read_progress
from rl_control.train.persistence import (
    ResumeError,
    RunLock,
    RunLockError,
    latest_checkpoint,
    load_checkpoint,
)
from rl_control.train.signals import stop_file_on_signals, watch_stop_file

ROOT = Path(__file__).resolve().parents[2]
SMALL = {'hidden_sizes': [8], 'batch_size': 8, 'learning_starts': 50}


def _cfg(**over):
    return config_from_dict({'env': 'Pendulum-v1', 'algo': 'sac', 'seed': 0,
                             'total_steps': 300, 'tensorboard': False,
                             'eval': {'every': 100, 'episodes': 1}, 'algo_kwargs': SMALL,
                             **over})


def test_ctrl_c_of_rl_control_train_writes_the_bundle_then_a_checkpoint_and_resume_continues(
        tmp_path):
    out = tmp_path / 'run'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    common = ['--config', str(ROOT / 'config' / 'pendulum_sac.yaml'), '--out', str(out),
              '--no-progress', '--set', 'target_return=null', '--set', 'eval.every=200',
              '--set', 'eval.episodes=1', '--set', 'tensorboard=false',
              '--set', 'algo_kwargs.learning_starts=100', '--set', 'algo_kwargs.batch_size=32']
    proc = subprocess.Popen([sys.executable, '-m', 'rl_control.cli', 'train', *common,
                             '--set', 'total_steps=1000000'], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        end = time.monotonic() + 120
        while not (out / 'progress.csv').is_file() and time.monotonic() < end:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.1)
        t_signal = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    assert time.monotonic() - t_signal < 30
    assert 'Traceback' not in stderr and 'KeyboardInterrupt' not in stderr, stderr[-3000:]
    last = stdout.strip().splitlines()[-1]
    assert last.startswith('stopped by SIGINT at step '), stdout
    step = int(last.split('at step ')[1].split(':')[0])
    ckpt = latest_checkpoint(out / 'checkpoints')
    assert ckpt.name == f'ckpt_{step:012d}.pt' and str(ckpt) in last
    assert str(out / 'bundle') in last
    spec, _policy = load_bundle(out / 'bundle')
    assert spec['trained_with']['total_steps'] == step
    assert (out / 'bundle' / 'policy.yaml').stat().st_mtime_ns <= ckpt.stat().st_mtime_ns

    proc = subprocess.run([sys.executable, '-m', 'rl_control.cli', 'train', *common,
                           '--resume', '--set', f'total_steps={step + 250}'],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'done: {step + 250} steps' in proc.stdout
    assert read_progress(out / 'progress.csv')[-1]['step'] == step + 250


class _RaiseAt(Callback):
    def __init__(self, signum, at_step):
        self.signum, self.at_step = signum, at_step

    def on_eval(self, info):
        if info['step'] == self.at_step:
            signal.raise_signal(self.signum)


@pytest.mark.parametrize('algo', ['sac', 'ppo'])
def test_sigterm_stops_at_once_and_keeps_the_run(tmp_path, algo):
    extra = {'algo_kwargs': {'hidden_sizes': [8], 'n_steps': 20, 'batch_size': 10}} \
        if algo == 'ppo' else {}
    cfg = _cfg(algo=algo, total_steps=100000, **extra)
    before = signal.getsignal(signal.SIGTERM)
    result = train(cfg, tmp_path, progress=False, callbacks=[_RaiseAt(signal.SIGTERM, 100)])
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
    assert result.signal == 'SIGTERM' and result.stopped
    assert result.steps == 100  # the step (the rollout) it came in, nothing more
    assert [r['step'] for r in result.history] == [100]
    assert latest_checkpoint(tmp_path / 'checkpoints') == result.checkpoint
    assert load_checkpoint(result.checkpoint)['counters']['env_steps'] == result.steps
    assert load_bundle(tmp_path / 'bundle')[0]['trained_with']['total_steps'] == result.steps


def test_the_drivers_signal_reaches_each_run_through_the_stop_file(tmp_path):
    control = TrainControl()
    said = []
    with stop_file_on_signals(tmp_path, said.append) as path:
        unwatch = watch_stop_file(path, control, period_s=0.02)
        signal.raise_signal(signal.SIGINT)
        end = time.monotonic() + 2
        while not control.stop_requested and time.monotonic() < end:
            time.sleep(0.01)
        unwatch()
    assert control.stop_signal == 'SIGINT' and said and not path.exists()


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    train(_cfg(checkpoint_every=100), tmp_path, progress=False)
    latest = latest_checkpoint(tmp_path / 'checkpoints')
    assert latest.name.endswith('300.pt')
    latest.write_bytes(latest.read_bytes()[:1000])  # torn
    result = train(_cfg(checkpoint_every=100, total_steps=400), tmp_path, resume=True,
                   progress=False)
    err = capsys.readouterr().err
    assert f'{latest}: unreadable checkpoint' in err and 'ckpt_000000000200.pt' in err
    assert result.steps == 400
    rows = read_progress(tmp_path / 'progress.csv')
    assert [r['step'] for r in rows][-3:] == [200, 300, 400]

    for p in (tmp_path / 'checkpoints').glob('ckpt_*.pt'):
        p.write_bytes(b'not a checkpoint')
    with pytest.raises(ResumeError, match='unreadable checkpoint .* no older checkpoint loads'):
        train(_cfg(total_steps=500), tmp_path, resume=True, progress=False)


def test_latest_must_name_a_checkpoint_inside_checkpoints(tmp_path):
    elsewhere = tmp_path / 'elsewhere.pt'
    torch.save({'format': 'x'}, elsewhere)
    (tmp_path / 'checkpoints').mkdir()
    for name in (str(elsewhere), '../elsewhere.pt'):
        (tmp_path / 'checkpoints' / 'latest').write_text(name + '\n')
        with pytest.raises(ResumeError, match='latest: names .* not a checkpoint file in'):
            latest_checkpoint(tmp_path / 'checkpoints')


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f'touch {self.path}',))


def test_a_checkpoint_that_would_execute_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / 'marker'
    ckpt = tmp_path / 'checkpoints' / 'ckpt_000000000100.pt'
    ckpt.parent.mkdir()
    torch.save({'format': 'rl_control.checkpoint/2', 'evil': _Marker(marker)}, ckpt)
    with pytest.raises(Exception):  # noqa: B017 - torch's UnpicklingError, or ResumeError
        load_checkpoint(ckpt)
    with pytest.raises(ResumeError, match='unreadable checkpoint'):
        train(_cfg(), tmp_path, resume=True, progress=False)
    assert not marker.exists()


def test_a_classic_control_env_snapshot_is_plain_data():
    from rl_control.envs.snapshot import env_state, set_env_state

    env = gym.make('Pendulum-v1')
    env.reset(seed=0)
    snap = env_state(env)

    def plain(x):
        if isinstance(x, dict):
            return all(plain(v) for v in x.values())
        if isinstance(x, (list, tuple)):
            return all(plain(v) for v in x)
        return isinstance(x, (bool, int, float, str, type(None), np.ndarray, np.generic))

    assert plain(snap)
    with pytest.raises(ValueError, match="kind 'pickle' cannot be restored"):
        set_env_state(env, {**snap, 'kind': 'pickle', 'env': b'...'})


class _NaNAt(gym.Wrapper):
    """Pendulum whose `what` is NaN at its `at`-th step."""

    def __init__(self, env, what, at):
        super().__init__(env)
        self.what, self.at, self.k = what, at, 0

    def step(self, action):
        obs, rew, term, trunc, info = self.env.step(action)
        self.k += 1
        if self.k == self.at:
            if self.what == 'observation':
                obs = obs.copy()
                obs[1] = np.nan
            else:
                rew = float('inf')
        return obs, rew, term, trunc, info


for _what in ('observation', 'reward'):
    gym.register(f'Test17NaN{_what.title()}-v0', max_episode_steps=200,
                 entry_point=lambda what=_what, **kw: _NaNAt(
                     gym.make('Pendulum-v1').unwrapped, what, 250))


@pytest.mark.parametrize('what', ['observation', 'reward'])
def test_nan_from_the_env_stops_the_run_naming_the_step_and_keeps_the_last_good_files(
        tmp_path, what, capsys):
    cfg = tmp_path / 'cfg.yaml'
    cfg.write_text(f'env: Test17NaN{what.title()}-v0\nalgo: sac\ntotal_steps: 600\n'
                   'checkpoint_every: 100\nnormalize_obs: true\ntensorboard: false\n'
                   'eval: {every: 1000, episodes: 1}\n'
                   'algo_kwargs: {hidden_sizes: [8], batch_size: 8, learning_starts: 50}\n')
    out = tmp_path / 'run'
    assert main(['train', '--config', str(cfg), '--out', str(out), '--no-progress']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('rl-control: error: step 250: non-finite '
                                               f'{what}'), err
    state = load_checkpoint(latest_checkpoint(out / 'checkpoints'))
    assert state['counters']['env_steps'] == 200  # the last good one
    assert np.all(np.isfinite(state['normalizer']['mean']))
    assert not (out / 'bundle').exists()


def test_a_non_finite_loss_stops_the_run(tmp_path, monkeypatch):
    from rl_control.algos.sac import SAC

    real = SAC.update

    def update(self, batch):
        metrics = real(self, batch)
        return {**metrics, 'critic_loss': float('nan')} if self.n_updates > 20 else metrics

    monkeypatch.setattr(SAC, 'update', update)
    with pytest.raises(NonFiniteError, match=r'step 71: non-finite critic_loss \(nan\)'):
        train(_cfg(), tmp_path, progress=False)


def test_one_non_finite_observation_does_not_poison_the_running_normalizer():
    rms = RunningMeanStd(3)
    rms.update(np.array([[1.0, 2.0, 3.0], [np.nan, 0.0, 0.0], [3.0, 4.0, np.inf]]))
    assert np.all(np.isfinite(rms.mean)) and np.all(np.isfinite(rms.var))
    np.testing.assert_allclose(rms.mean, [1.0, 2.0, 3.0])


def test_a_second_run_on_the_same_out_is_refused_and_a_dead_owners_lock_is_taken_over(
        tmp_path, capsys):
    cfg = tmp_path / 'cfg.yaml'
    cfg.write_text('env: Pendulum-v1\nalgo: sac\ntotal_steps: 100\ntensorboard: false\n'
                   'eval: {every: 100, episodes: 1}\n'
                   'algo_kwargs: {hidden_sizes: [8], batch_size: 8, learning_starts: 50}\n')
    out = tmp_path / 'run'
    with RunLock(out):
        assert main(['train', '--config', str(cfg), '--out', str(out), '--no-progress']) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f'another run (pid {os.getpid()})' in err[0], err
        with pytest.raises(RunLockError):
            train(_cfg(), out, progress=False)
    assert not (out / 'checkpoints').exists()
    (out / '.lock').write_text('999999999\n')  # left behind by a process that died
    assert main(['train', '--config', str(cfg), '--out', str(out), '--no-progress']) == 0


def test_resume_with_another_seed_is_refused(tmp_path, capsys):
    cfg = tmp_path / 'cfg.yaml'
    cfg.write_text('env: Pendulum-v1\nalgo: sac\nseed: 0\ntotal_steps: 100\n'
                   'tensorboard: false\neval: {every: 100, episodes: 1}\n'
                   'algo_kwargs: {hidden_sizes: [8], batch_size: 8, learning_starts: 50}\n')
    out = str(tmp_path / 'run')
    assert main(['train', '--config', str(cfg), '--out', out, '--no-progress']) == 0
    capsys.readouterr()
    assert main(['train', '--config', str(cfg), '--out', out, '--no-progress', '--resume',
                 '--set', 'seed=7', '--set', 'total_steps=200']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'differs' in err[0] and "'seed': 0" in err[0], err
