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
