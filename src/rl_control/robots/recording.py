"""Recordings of a robot session as rosbag2 bags (MCAP), written and read without a ROS distro.

Why segments: an MCAP file is readable only once its footer is written (rosbags' reader and
rosbag2 need it, and rosbag2 needs the bag's metadata.yaml too), so one long bag dies with the
process that writes it. A recording is therefore a folder of complete rosbag2 bags of
`segment_s` each, `seg_00000/`, `seg_00001/`, ...: each is written under a hidden
`.seg_NNNNN.partial/` name and renamed when closed (its metadata.yaml rewritten atomically). A
SIGKILL loses at most the segment being written; every visible segment is a bag `ros2 bag info`
/ `ros2 bag play` read as they are. A recorder that opens a folder continues after the highest
index there, `.partial` leftovers of a killed writer included, so it never collides with one.

Messages go in as the CDR bytes ROS serializes (`rclpy.serialization.serialize_message`), with
their type name; the message definitions come from rosbags' type store of the ROS 2
distribution (default Kilted, the version of this project's ROS wheels), so `ros2 bag` can
decode them.
"""
from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import re
import time
from typing import Any

SEGMENT_PREFIX = 'seg_'
_INDEX = re.compile(rf'\.?{SEGMENT_PREFIX}(\d+)(\.partial)?')


def _typestore(distro: str) -> Any:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores[f'ROS2_{distro.upper()}'])


class BagRecorder:
    """Appends (topic, type, time, CDR bytes) to a recording folder, one segment at a time."""

    def __init__(self, root: str | Path, segment_s: float = 1.0, distro: str = 'kilted',
                 clock: Any = time.monotonic) -> None:
        if segment_s <= 0:
            raise ValueError(f'segment_s must be > 0, got {segment_s}')
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.segment_s, self.clock = float(segment_s), clock
        self.typestore = _typestore(distro)
        self.index = next_index(self.root)
        self.writer: Any = None
        self.connections: dict[tuple[str, str], Any] = {}
        self.opened_at = 0.0
        self.messages = 0

    def write(self, topic: str, msgtype: str, t_ns: int, data: bytes) -> None:
        """Record one serialized message (`msgtype` as 'sensor_msgs/msg/JointState')."""
        now = self.clock()
        if self.writer is None or now - self.opened_at >= self.segment_s:
            self._rotate(now)
        key = (topic, msgtype)
        conn = self.connections.get(key)
        if conn is None:
            conn = self.connections[key] = self.writer.add_connection(
                topic, msgtype, typestore=self.typestore)
        self.writer.write(conn, int(t_ns), data)
        self.messages += 1

    def _rotate(self, now: float) -> None:
        self._close_segment()
        from rosbags.rosbag2 import StoragePlugin, Writer

        partial = self.root / f'.{SEGMENT_PREFIX}{self.index:05d}.partial'
        self.writer = Writer(partial, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.connections, self.opened_at = {}, now

    def _close_segment(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        partial = Path(self.writer.path)
        final = self.root / f'{SEGMENT_PREFIX}{self.index:05d}'
        # rosbag2 names the storage file after its folder: rename it with the folder.
        (partial / f'{partial.name}.mcap').rename(partial / f'{final.name}.mcap')
        meta = partial / 'metadata.yaml'
        tmp = partial / '.metadata.yaml.tmp'
        tmp.write_text(meta.read_text().replace(f'{partial.name}.mcap', f'{final.name}.mcap'))
        os.replace(tmp, meta)  # a kill here leaves the old file or the new one, never half
        os.replace(partial, final)
        self.index += 1
        self.writer = None

    def close(self) -> None:
        """Close the segment being written (a recording without close loses only it)."""
        self._close_segment()


def next_index(root: Path) -> int:
    """One past the highest segment index in `root`, closed or left partial (0: none)."""
    found = [int(m.group(1)) for p in root.iterdir() if (m := _INDEX.fullmatch(p.name))]
    return max(found) + 1 if found else 0


def segments(root: str | Path) -> list[Path]:
    """The complete segments of a recording, in order (partial ones are skipped)."""
    return sorted(p for p in Path(root).glob(f'{SEGMENT_PREFIX}*') if p.is_dir())


def read_recording(root: str | Path, topics: set[str] | None = None, distro: str = 'kilted'
                   ) -> Iterator[tuple[str, str, int, Any]]:
    """(topic, msgtype, time_ns, message) of every message, segment by segment.

    Messages are rosbags' dataclasses (fields as in the .msg definitions, arrays as numpy).
    A folder that is itself one rosbag2 bag (e.g. from `ros2 bag record`) works too.
    """
    from rosbags.rosbag2 import Reader

    store = _typestore(distro)
    root = Path(root)
    bags = [root] if (root / 'metadata.yaml').is_file() else segments(root)
    if not bags:
        raise FileNotFoundError(f'{root}: no rosbag2 bag or recording segments')
    for bag in bags:
        with Reader(bag) as reader:
            conns = [c for c in reader.connections if topics is None or c.topic in topics]
            for conn, t_ns, raw in reader.messages(connections=conns):
                yield conn.topic, conn.msgtype, t_ns, _deserialize(store, raw, conn.msgtype)


def _deserialize(store: Any, raw: bytes, msgtype: str) -> Any:
    """CDR bytes -> message, ignoring trailing bytes.

    rosbags refuses more than 3 bytes after the message; rmw_fastrtps_cpp (the Kilted wheels)
    serializes a JointTrajectory with 12 (ROS's own deserializer, as `ros2 bag play` uses,
    ignores them).
    """
    from rosbags.serde import SerdeError

    if len(raw) < 4 or bytes(raw[:2]) not in {b'\x00\x00', b'\x00\x01'}:
        raise SerdeError(f'{msgtype}: invalid or unsupported CDR encapsulation')
    msgdef = store.get_msgdef(msgtype)
    func = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
    return func(raw[4:], 0, msgdef.cls, store)[0]
