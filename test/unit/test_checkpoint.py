"""Checkpoints: crash-safe writes, and resume == uninterrupted run across a killed process."""
import os
from pathlib import Path
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from safetensors.numpy import load_file

from rl_control.train.logger import read_progress
from rl_control.train.persistence import (
    atomic_write_bytes,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

ROOT = Path(__file__).resolve().parents[2]


def test_save_points_latest_at_newest_and_prunes(tmp_path):
    for step in (100, 200, 300):
        save_checkpoint(tmp_path, step, {'step': step, 'x': np.arange(step)})
    assert latest_checkpoint(tmp_path).name == 'ckpt_000000000300.pt'
    assert load_checkpoint(latest_checkpoint(tmp_path))['step'] == 300
    assert len(list(tmp_path.glob('ckpt_*.pt'))) == 2  # keep=2


def test_python_error_mid_write_keeps_old_file_and_cleans_temp(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, 1, {'step': 1})

    def boom(*_args):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', boom)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, 2, {'step': 2})
    monkeypatch.undo()
    assert load_checkpoint(latest_checkpoint(tmp_path))['step'] == 1
    assert not list(tmp_path.glob('*.tmp'))


def test_hard_kill_mid_write_leaves_temp_and_old_checkpoint_intact(tmp_path):
    save_checkpoint(tmp_path, 1, {'step': 1, 'payload': np.ones(1000)})
    # A process that dies (os._exit, like SIGKILL: no cleanup) after writing half the bytes.
    code = textwrap.dedent(f"""
        import os
        import numpy as np
        from rl_control.train import persistence as checkpoint
        real_fsync = os.fsync
        def die(fd):
            os._exit(9)
        os.fsync = die
        checkpoint.save_checkpoint({str(tmp_path)!r}, 2, {{'step': 2, 'payload': np.zeros(10**6)}})
    """)
    proc = subprocess.run([sys.executable, '-c', code], timeout=120)
    assert proc.returncode == 9
    assert list(tmp_path.glob('.*.tmp')), 'the interrupted write should be a stray temp file'
    assert latest_checkpoint(tmp_path).name == 'ckpt_000000000001.pt'
    state = load_checkpoint(latest_checkpoint(tmp_path))
    assert state['step'] == 1 and state['payload'].sum() == 1000


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / 'f.bin'
    atomic_write_bytes(target, b'old')
    atomic_write_bytes(target, b'new contents')
    assert target.read_bytes() == b'new contents'
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


RUN = textwrap.dedent("""
    import os, sys
    import torch
    torch.set_num_threads(1)
    from rl_control.train.config import config_from_dict
    from rl_control.train.learn import Callback, train

    out, resume, kill_at = sys.argv[1], sys.argv[2] == '1', int(sys.argv[3])
    case = sys.argv[4]
    off = {'hidden_sizes': [16, 16], 'batch_size': 16, 'learning_starts': 100}
    extra = {
        # on-policy loop, with both normalizers: rollouts of 2 x 10 steps
        'a2c': {'normalize_reward': True, 'algo_kwargs': {'hidden_sizes': [16, 16],
                                                          'n_steps': 10}},
        'sac': {'algo_kwargs': off},
        # the same, plus shuffled minibatches and gSDE resampled every 3 steps
        'ppo': {'normalize_reward': True,
                'algo_kwargs': {'hidden_sizes': [16, 16], 'n_steps': 10, 'batch_size': 8,
                                'n_epochs': 2, 'use_sde': True, 'sde_sample_freq': 3}},
        # OU noise state (per env, reset at episode ends) and both noise streams
        'td3_ou': {'algo': 'td3', 'time_limit': 70, 'normalize_reward': True,
                   'algo_kwargs': {**off, 'action_noise': 'ou', 'noise_sigma': 0.5}},
        # HER bookkeeping across the kill: 40-step episodes, one open at the checkpoint
        'sac_her': {'algo': 'sac', 'env': 'rl_control/PandaJointReach-v0', 'time_limit': 40,
                    'her': {'strategy': 'future', 'k': 4}, 'algo_kwargs': off},
    }[case]
    cfg = config_from_dict({
        'env': 'Pendulum-v1', 'algo': case, 'seed': 3, 'total_steps': 600,
        'n_envs': 2, 'checkpoint_every': 300, 'eval': {'every': 200, 'episodes': 2},
        'normalize_obs': True, 'tensorboard': False, **extra})

    class Kill(Callback):
        def on_checkpoint(self, path, step):
            if step == kill_at:
                os._exit(17)  # no cleanup, no flush: as abrupt as SIGKILL for our files

    train(cfg, out, resume=resume, progress=False, callbacks=[Kill()])
""")


def run(out: Path, resume: bool, kill_at: int, case: str) -> int:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-c', RUN, str(out), '1' if resume else '0',
                           str(kill_at), case], env=env, timeout=300, capture_output=True,
                          text=True)
    assert proc.returncode in (0, 17), proc.stderr[-3000:]
    return proc.returncode


@pytest.mark.parametrize('case', ['sac', 'a2c', 'ppo', 'td3_ou', 'sac_her'])
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, case):
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    assert run(full, False, -1, case) == 0
    assert run(killed, False, 300, case) == 17
    assert latest_checkpoint(killed / 'checkpoints').name == 'ckpt_000000000300.pt'
    assert not (killed / 'bundle').exists()
    mid = load_checkpoint(latest_checkpoint(killed / 'checkpoints'))
    if case == 'td3_ou':  # the OU processes are mid-episode (70-step episodes) at step 300
        assert np.abs(mid['agent']['noise']['x']).min() > 0
    if case == 'sac_her':  # an episode is open at the checkpoint: 150 steps per env, 40 each
        assert (mid['buffer']['current_start'] < mid['buffer']['total']).all()
    assert run(killed, True, -1, case) == 0

    wa = load_file(full / 'bundle' / 'actor.safetensors')
    wb = load_file(killed / 'bundle' / 'actor.safetensors')
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
    ra = [(r['step'], r['eval_mean_return']) for r in read_progress(full / 'progress.csv')]
    rb = [(r['step'], r['eval_mean_return']) for r in read_progress(killed / 'progress.csv')]
    assert ra == rb and [s for s, _ in ra] == [200, 400, 600]
    sa = load_checkpoint(latest_checkpoint(full / 'checkpoints'))
    sb = load_checkpoint(latest_checkpoint(killed / 'checkpoints'))
    assert sa['counters']['env_steps'] == sb['counters']['env_steps'] == 600
    for key, value in sa['agent']['critic'].items():
        assert np.array_equal(value.numpy(), sb['agent']['critic'][key].numpy()), key
    if sa['buffer'] is not None:
        assert np.array_equal(sa['buffer']['obs'], sb['buffer']['obs'])
    assert np.array_equal(sa['normalizer']['mean'], sb['normalizer']['mean'])


def test_checkpoint_requested_from_another_thread(tmp_path):
    """The ROS trainer node asks for a checkpoint from its executor thread."""
    import threading

    from rl_control.train.config import config_from_dict
    from rl_control.train.learn import Callback, TrainControl, train

    control = TrainControl()
    saved = []

    class Watch(Callback):
        def on_eval(self, row):
            if row['step'] == 100:
                t = threading.Thread(target=control.request_checkpoint)
                t.start()
                t.join()

        def on_checkpoint(self, path, step):
            saved.append((step, path.is_file(), (tmp_path / 'bundle/policy.yaml').is_file()))

    cfg = config_from_dict({
        'env': 'Pendulum-v1', 'algo': 'sac', 'total_steps': 300, 'tensorboard': False,
        'eval': {'every': 100, 'episodes': 1},
        'algo_kwargs': {'hidden_sizes': [8], 'learning_starts': 50, 'batch_size': 8}})
    train(cfg, tmp_path, progress=False, callbacks=[Watch()], control=control)
    # A checkpoint right after the request (step 101), then the final one.
    assert saved[0][:2] == (101, True) and saved[-1][0] == 300
    assert (tmp_path / 'checkpoints' / 'latest').read_text().strip().endswith('300.pt')


def test_resume_refuses_other_formats_and_other_tasks(tmp_path):
    from rl_control.train.persistence import CHECKPOINT_FORMAT, ResumeError, check_resumable

    cfg = {'env': 'Pendulum-v1', 'algo': 'sac', 'n_envs': 1}
    with pytest.raises(ResumeError, match='rl_control.checkpoint/1'):
        check_resumable({'format': 'rl_control.checkpoint/1', 'config': cfg}, cfg, tmp_path)
    with pytest.raises(ResumeError, match='differs .* in env'):
        check_resumable({'format': CHECKPOINT_FORMAT, 'config': {**cfg, 'env': 'X-v0'}}, cfg,
                        tmp_path)
    check_resumable({'format': CHECKPOINT_FORMAT, 'config': cfg}, cfg, tmp_path)
