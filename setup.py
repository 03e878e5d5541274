"""ament_python package for rl_control (src layout).

The same setup.py serves `pip install -e .` (no ROS distro: ROS comes from PyPI wheels via the
`ros` extra) and `colcon build` (ROS distro: rclpy and messages come from the distro).
"""
from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'rl_control'


def tree(src: str, dst_root: str) -> list[tuple[str, list[str]]]:
    """List (install_dir, files) pairs so a folder installs with its sub-folders."""
    out: list[tuple[str, list[str]]] = []
    for folder, _dirs, files in os.walk(src):
        paths = [os.path.join(folder, f) for f in files if not f.endswith('.pyc')]
        if paths:
            out.append((os.path.join(dst_root, folder), paths))
    return out


share = os.path.join('share', PACKAGE)
data_files = [
    ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
    (share, ['package.xml']),
    (os.path.join(share, 'launch'), glob('launch/*.launch.py')),
    *tree('config', share),
    *tree('models', share),
]

setup(
    name=PACKAGE,
    version='0.2.0',
    package_dir={'': 'src'},
    packages=find_packages('src'),
    package_data={'rl_control.robots': ['assets/*.xml']},
    data_files=data_files,
    python_requires='>=3.10',
    # Hard requirements: everything the core and sim need. ROS comes from a distro or the `ros`
    # extra (PyPI wheels); exact versions are pinned in constraints.txt.
    install_requires=[
        'numpy',
        'torch',
        'gymnasium',
        'mujoco',
        'imageio',
        'pyyaml',
        'safetensors',
        'tqdm',
        'tensorboard',
        'matplotlib',
        'ruckig',
    ],
    extras_require={
        'panda': ['panda-gym', 'pybullet'],
        'ros': [
            'ros-rclpy', 'ros-rmw-fastrtps-cpp', 'ros-sensor-msgs', 'ros-std-msgs',
            'ros-geometry-msgs', 'ros-trajectory-msgs', 'ros-std-srvs', 'ros-diagnostic-msgs',
            'ros-lifecycle-msgs',
        ],
        'bench': ['stable-baselines3'],
        'onnx': ['onnx', 'onnxruntime'],
        # rosbag2 recording and the gap report, without a ROS distro
        'record': ['rosbags'],
        # `rl-control sweep` and `rl-control train --seeds` (Ray Tune, Optuna search).
        'sweep': ['ray[tune]', 'optuna'],
        'dev': ['pytest', 'pytest-timeout', 'ruff', 'colcon-common-extensions', 'vermin'],
    },
    zip_safe=True,
    maintainer='rl_control maintainers',
    maintainer_email='rl-control@example.com',
    description='Actor-critic RL for robot arms, served as ROS 2 nodes.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'rl-control = rl_control.cli:main',
            'policy_server = rl_control.ros.policy_server:main',
            'sim_robot = rl_control.ros.sim_robot:main',
            'trainer = rl_control.ros.trainer_node:main',
        ],
    },
)
