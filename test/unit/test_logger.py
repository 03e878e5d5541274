"""RunLogger: the TensorBoard writer is made only when the run is 10 s old or ends, and then
holds every scalar logged before, in order (train/logger.py)."""
import pytest

from rl_control.train import logger as logger_module
from rl_control.train.logger import RunLogger


def _scalars(tb_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()['scalars']}


def test_writer_deferred_to_the_end_of_a_short_run(tmp_path):
    log = RunLogger(tmp_path, tensorboard=True)
    for step in (100, 200, 300):
        log.row({'step': step, 'eval_mean_return': -step / 10, 'critic_loss': 1.0 / step})
    assert log._writer is None and not (tmp_path / 'tb').exists()  # nothing made yet
    log.close()
    got = _scalars(tmp_path / 'tb')
    assert got['eval/eval_mean_return'] == [(100, -10.0), (200, -20.0), (300, -30.0)]
    assert [s for s, _ in got['train/critic_loss']] == [100, 200, 300]


def test_writer_made_once_the_run_is_ten_seconds_old(tmp_path, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(logger_module.time, 'monotonic', lambda: clock[0])
    log = RunLogger(tmp_path, tensorboard=True)
    log.row({'step': 1, 'eval_mean_return': 1.0})
    assert log._writer is None
    clock[0] = logger_module.FLUSH_SECS
    log.row({'step': 2, 'eval_mean_return': 2.0})
    assert log._writer is not None  # made now, with the earlier row written first
    log.row({'step': 3, 'eval_mean_return': 3.0})
    log.close()
    assert _scalars(tmp_path / 'tb')['eval/eval_mean_return'] == [(1, 1.0), (2, 2.0),
                                                                   (3, 3.0)]


def test_no_tensorboard_writes_none(tmp_path):
    log = RunLogger(tmp_path, tensorboard=False)
    log.row({'step': 1, 'eval_mean_return': 1.0})
    log.close()
    assert not (tmp_path / 'tb').exists()
    pytest.importorskip('matplotlib')
    assert (tmp_path / 'learning_curve.png').is_file()
