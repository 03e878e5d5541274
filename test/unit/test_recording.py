"""Recordings: rosbag2 (MCAP) segments that survive a SIGKILL of the writer."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip('rosbags')

from rl_control.robots.recording import BagRecorder, read_recording, segments  # noqa: E402

WRITE = textwrap.dedent("""
    import os, sys
    from rosbags.typesys import Stores, get_typestore
    from rl_control.robots.recording import BagRecorder
    store = get_typestore(Stores.ROS2_KILTED)
    JointState = store.types['sensor_msgs/msg/JointState']
    Header = store.types['std_msgs/msg/Header']
    Time = store.types['builtin_interfaces/msg/Time']
    import numpy as np
    t = [0.0]
    rec = BagRecorder(sys.argv[1], segment_s=0.1, clock=lambda: t[0])
    for k in range(int(sys.argv[2])):
        t[0] = k * 0.01
        msg = JointState(header=Header(stamp=Time(sec=0, nanosec=k), frame_id=''),
                         name=['j1'], position=np.array([float(k)]),
                         velocity=np.array([0.0]), effort=np.array([0.0]))
        rec.write('joint_states', 'sensor_msgs/msg/JointState', k * 10_000_000,
                  store.serialize_cdr(msg, 'sensor_msgs/msg/JointState'))
    if sys.argv[3] == 'kill':
        os._exit(9)  # like SIGKILL: no close, no flush
    rec.close()
""")


def write(tmp_path, n, how):
    return subprocess.run([sys.executable, '-c', WRITE, str(tmp_path), str(n), how],
                          capture_output=True, text=True, timeout=120)


def test_a_closed_recording_reads_back_every_message(tmp_path):
    assert write(tmp_path, 35, 'close').returncode == 0
    got = list(read_recording(tmp_path))
    assert len(segments(tmp_path)) == 4
    assert [m.position[0] for _t, _ty, _ns, m in got] == list(range(35))
    assert all(topic == 'joint_states' for topic, *_ in got)


def test_a_killed_writer_leaves_every_closed_segment_readable(tmp_path):
    assert write(tmp_path, 35, 'kill').returncode == 9
    segs = segments(tmp_path)
    assert len(segs) == 3 and all((s / 'metadata.yaml').is_file() for s in segs)
    got = [m.position[0] for *_, m in read_recording(tmp_path)]
    # a contiguous prefix: the open segment (at most 0.1 s of messages) is the only loss
    assert got == list(range(len(got))) and 25 <= len(got) < 35
    assert list(tmp_path.glob('.seg_*.partial'))  # hidden, not mistaken for a bag


def test_each_segment_is_a_rosbag2_bag_with_its_storage_file_named_after_it(tmp_path):
    rec = BagRecorder(tmp_path, segment_s=10.0)
    rec.write('x', 'std_msgs/msg/Float64MultiArray', 1, _float64_array([1.0, 2.0]))
    rec.close()
    seg = segments(tmp_path)[0]
    assert (seg / f'{seg.name}.mcap').is_file()
    assert f'{seg.name}.mcap' in (seg / 'metadata.yaml').read_text()
    (_topic, _ty, ns, msg), = list(read_recording(seg))
    assert ns == 1 and np.array_equal(msg.data, [1.0, 2.0])


def _float64_array(values):
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    t = store.types
    layout = t['std_msgs/msg/MultiArrayLayout'](dim=[], data_offset=0)
    msg = t['std_msgs/msg/Float64MultiArray'](layout=layout, data=np.array(values))
    return store.serialize_cdr(msg, 'std_msgs/msg/Float64MultiArray')


def test_a_recorder_opened_after_a_killed_writer_continues_after_its_partial(tmp_path):
    assert write(tmp_path, 35, 'kill').returncode == 9
    left = sorted(p.name for p in tmp_path.glob('.seg_*.partial'))
    assert left == ['.seg_00003.partial']
    rec = BagRecorder(tmp_path, segment_s=10.0)
    rec.write('x', 'std_msgs/msg/Float64MultiArray', 1, _float64_array([7.0]))
    rec.close()
    assert [s.name for s in segments(tmp_path)] == ['seg_00000', 'seg_00001', 'seg_00002',
                                                    'seg_00004']
    last = list(read_recording(segments(tmp_path)[-1]))
    assert np.array_equal(last[0][3].data, [7.0])


def test_segment_metadata_is_replaced_atomically(tmp_path, monkeypatch):
    from pathlib import Path

    import yaml

    rec = BagRecorder(tmp_path, segment_s=10.0)
    rec.write('x', 'std_msgs/msg/Float64MultiArray', 1, _float64_array([1.0]))
    rec.writer.close()  # what _close_segment does first; the metadata then gets renamed
    rec.writer.close = lambda: None
    meta = tmp_path / '.seg_00000.partial' / 'metadata.yaml'
    before = meta.read_text()
    real = Path.write_text

    def disk_full(self, data, *args, **kwargs):  # half the bytes, then the disk is full
        real(self, data[:len(data) // 2], *args, **kwargs)
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(Path, 'write_text', disk_full)
    with pytest.raises(OSError):
        rec.close()
    monkeypatch.undo()
    assert meta.read_text() == before and yaml.safe_load(before)


def test_the_topic_recorder_drops_and_counts_instead_of_blocking(monkeypatch, tmp_path):
    pytest.importorskip('rclpy')
    import threading
    import time

    from std_msgs.msg import Float64MultiArray

    from rl_control.ros import recorder
    from rl_control.serve import diagnostics

    stuck = threading.Event()
    monkeypatch.setattr(recorder, 'QUEUE_SIZE', 5)
    monkeypatch.setattr(recorder.BagRecorder, 'write', lambda *a: stuck.wait(10))
    rec = recorder.TopicRecorder(str(tmp_path / 'rec'))
    t0 = time.perf_counter()
    for k in range(50):
        rec.record('/x', Float64MultiArray(data=[float(k)]), k)
    assert time.perf_counter() - t0 < 0.5
    assert 44 <= rec.dropped <= 45  # 5 queued, one perhaps taken by the stuck writer
    values = {}
    level, message = diagnostics.bring_up(diagnostics.OK, 'serving', values, False, rec)
    assert level == diagnostics.WARN and f'dropped {rec.dropped} messages' in message
    assert values['recording_dropped'] == rec.dropped
    stuck.set()
    rec.close()
