"""The trainer node over real DDS: services, progress, and SIGINT leaving a loadable checkpoint."""
from __future__ import annotations

import json
from pathlib import Path
import signal
import time

from conftest import REPO, Nodes, Probe, wait_for
import pytest

pytestmark = pytest.mark.ros


def test_trainer_save_service_progress_and_sigint_checkpoint(
        nodes: Nodes, probe: Probe, tmp_path: Path) -> None:
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from rl_control.ros import qos

    progress = probe.record(String, '/trainer/progress', qos.RESULTS)
    out = tmp_path / 'run'
    proc = nodes.start('rl_control.ros.trainer_node', {
        'config': str(REPO / 'config' / 'pendulum_sac.yaml'), 'out': str(out),
        'set': ['total_steps=1000000', 'eval.every=500000', 'eval.episodes=1',
                'tensorboard=false', 'algo_kwargs.learning_starts=100']})

    reply = probe.call(Trigger, '/trainer/save_checkpoint', timeout=60)
    assert reply.success, reply.message
    events = lambda: [json.loads(m.data) for _t, m in list(progress)]  # noqa: E731
    wait_for(lambda: any(e.get('event') == 'checkpoint' for e in events()), 10,
             'checkpoint progress event', [proc])
    time.sleep(1.0)  # train a little past the checkpoint

    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=90)
    assert rc == 0, nodes.log(proc)[-3000:]

    from rl_control.bundle.io import load_bundle
    from rl_control.train.persistence import latest_checkpoint, load_checkpoint

    ckpt = latest_checkpoint(out / 'checkpoints')
    assert ckpt is not None, nodes.log(proc)[-3000:]
    state = load_checkpoint(ckpt)
    assert isinstance(state, dict) and state
    spec, policy = load_bundle(out / 'bundle')
    assert spec['task']['env_id'] == 'Pendulum-v1'
    wait_for(lambda: any(e.get('event') == 'end' and e.get('stopped') for e in events()), 30,
             'end event')  # (the last message of a process that is exiting: slow when loaded)
