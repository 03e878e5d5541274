"""Packaging: package.xml is valid ament metadata and `colcon build` installs a usable package.

Why this exists (DESIGN.md, "Packaging traps"): if catkin_pkg rejects package.xml, colcon quietly
builds a plain Python package, `install/setup.bash` sets no AMENT_PREFIX_PATH, and launch_ros
cannot find the executables. Nothing fails until a user runs `ros2 launch`. These tests fail
first. The colcon builds go to temporary build/install/log bases so the checkout stays clean.
"""
from __future__ import annotations

from collections.abc import Iterator
import importlib.util
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

import pytest

REPO = Path(__file__).resolve().parents[2]
WS = REPO / 'ros2_ws'
PACKAGE = 'rl_control'
EXECUTABLES = ('policy_server', 'sim_robot', 'trainer', 'rl-control')
LAUNCH_FILES = ('train.launch.py', 'sim.launch.py', 'serve.launch.py', 'demo.launch.py')
# Folders colcon or setuptools would create if a build leaked into the checkout.
LEAK_DIRS = [REPO / 'build', REPO / 'install', REPO / 'log',
             WS / 'build', WS / 'install', WS / 'log']
TIMEOUT_S = 120


def _colcon() -> list[str] | None:
    """colcon run by THIS interpreter when possible, so installed scripts point at it."""
    if importlib.util.find_spec('colcon_core') is not None:
        return [sys.executable, '-c',
                'import sys; from colcon_core.command import main; sys.exit(main())']
    found = shutil.which('colcon')
    return [found] if found else None


COLCON = _colcon()
needs_colcon = pytest.mark.skipif(COLCON is None, reason='colcon is not installed')


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command, failing the test with its output when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)
    assert proc.returncode == 0, (
        f'{cmd} failed ({proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}')
    return proc.stdout


def _source_files() -> list[Path]:
    """Data files setup.py must install under share/rl_control, relative to the repo."""
    files = [p.relative_to(REPO) for p in (REPO / 'launch').glob('*.launch.py')]
    for folder in ('config', 'models'):
        for path in (REPO / folder).rglob('*'):
            if path.is_file() and '__pycache__' not in path.parts and path.suffix != '.pyc':
                files.append(path.relative_to(REPO))
    return sorted(files)


# ---------------------------------------------------------------------------------------------
# package.xml
# ---------------------------------------------------------------------------------------------
def test_package_xml_is_valid_format_3() -> None:
    catkin_pkg = pytest.importorskip('catkin_pkg.package', reason='catkin_pkg is not installed')
    pkg = catkin_pkg.parse_package(str(REPO / 'package.xml'))
    pkg.validate()  # raises InvalidPackage, e.g. on an invalid maintainer email
    assert pkg.package_format == 3
    assert pkg.name == PACKAGE
    assert pkg.get_build_type() == 'ament_python'
    assert pkg.maintainers, 'package.xml needs a maintainer'
    for person in pkg.maintainers:
        assert re.fullmatch(r'[^@\s]+@[^@\s]+\.[^@\s]+', person.email or ''), person
    # One version everywhere: colcon reads package.xml, pip reads setup.py.
    setup_py = (REPO / 'setup.py').read_text()
    assert f"version='{pkg.version}'" in setup_py
    deps = {d.name for d in pkg.exec_depends}
    assert {'rclpy', 'launch', 'launch_ros', 'lifecycle_msgs'} <= deps


def test_resource_marker_exists() -> None:
    """The ament index marker setup.py installs; without it the package is not findable."""
    assert (REPO / 'resource' / PACKAGE).is_file()


@pytest.mark.parametrize('name, node', [('policy_server.yaml', 'policy_server'),
                                        ('policy_server_fr3.yaml', 'policy_server'),
                                        ('sim_robot.yaml', 'sim_robot')])
def test_node_params_file_applies_in_any_namespace(name: str, node: str) -> None:
    """rcl reads a `policy_server:` key as `/policy_server`, so `namespace:=arm1` would get
    NONE of the file's parameters, silently. `/**/policy_server:` (or `/**:`) matches always.
    """
    yaml = pytest.importorskip('yaml')
    path = REPO / 'config' / name
    if not path.is_file():
        pytest.skip(f'config/{name} is not in this checkout')
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict) and data, f'config/{name} is empty'
    for key, section in data.items():
        assert key in ('/**', f'/**/{node}'), (
            f"config/{name}: top-level key {key!r} only matches a node outside any namespace; "
            f"use '/**/{node}:'")
        assert isinstance(section, dict) and 'ros__parameters' in section, key


def test_workspace_symlink_points_at_repo() -> None:
    link = WS / 'src' / PACKAGE
    assert link.is_symlink(), f'{link} must be a symlink to the repository root'
    assert link.resolve() == REPO


# ---------------------------------------------------------------------------------------------
# colcon
# ---------------------------------------------------------------------------------------------
@needs_colcon
def test_colcon_lists_one_ament_python_package(tmp_path: Path) -> None:
    """Exactly one package: the ../.. symlink must not make colcon find .venv/share/* etc."""
    assert COLCON is not None
    out = _run([*COLCON, '--log-base', str(tmp_path / 'log'), 'list'], cwd=WS)
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    name, path, kind = lines[0].split('\t')
    assert (name, path, kind) == (PACKAGE, f'src/{PACKAGE}', '(ros.ament_python)'), out


class Build:
    """A finished colcon build in a temporary directory."""

    def __init__(self, root: Path, symlink: bool) -> None:
        self.root = root
        self.symlink = symlink
        self.install = root / 'install'
        self.prefix = self.install / PACKAGE
        self.share = self.prefix / 'share' / PACKAGE

    def sourced(self, script: str) -> str:
        """Run `script` in bash after sourcing install/setup.bash, from a ROS-free env."""
        env = {k: v for k, v in os.environ.items()
               if k not in ('AMENT_PREFIX_PATH', 'COLCON_PREFIX_PATH', 'PYTHONPATH')}
        return _run(['bash', '-c', f'source "{self.install}/setup.bash" && {script}'],
                    cwd=self.root, env=env)


def _build(root: Path, symlink: bool) -> Build:
    assert COLCON is not None
    before = {d for d in LEAK_DIRS if d.exists()}
    cmd = [*COLCON, '--log-base', str(root / 'log'), 'build',
           '--build-base', str(root / 'build'), '--install-base', str(root / 'install'),
           '--event-handlers', 'console_direct-']
    if symlink:
        cmd.append('--symlink-install')
    _run(cmd, cwd=WS)
    leaked = {d for d in LEAK_DIRS if d.exists()} - before
    assert not leaked, f'colcon build wrote into the checkout: {sorted(map(str, leaked))}'
    return Build(root, symlink)


@pytest.fixture(scope='module', params=[False, True], ids=['copy', 'symlink-install'])
def build(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    if COLCON is None:
        pytest.skip('colcon is not installed')
    mode = 'symlink' if request.param else 'copy'
    yield _build(tmp_path_factory.mktemp(f'colcon_{mode}'), symlink=request.param)


@needs_colcon
def test_executables_installed_where_launch_ros_looks(build: Build) -> None:
    """launch_ros runs <prefix>/lib/<package>/<executable>: setup.cfg's script dirs do that."""
    for name in EXECUTABLES:
        exe = build.prefix / 'lib' / PACKAGE / name
        assert exe.is_file(), f'{exe} missing'
        assert os.access(exe, os.X_OK), f'{exe} is not executable'
        shebang = exe.read_text().splitlines()[0]
        assert shebang.startswith('#!') and 'python' in shebang, shebang


@needs_colcon
def test_data_files_installed(build: Build) -> None:
    assert (build.share / 'package.xml').is_file()
    marker = build.prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / PACKAGE
    assert marker.is_file()
    for name in LAUNCH_FILES:
        assert (build.share / 'launch' / name).is_file(), f'launch/{name} not installed'
    missing = [str(rel) for rel in _source_files() if not (build.share / rel).is_file()]
    assert not missing, f'not installed under share/{PACKAGE}: {missing}'


@needs_colcon
def test_setup_bash_sets_ament_prefix_path(build: Build) -> None:
    out = build.sourced('echo "AMENT_PREFIX_PATH=$AMENT_PREFIX_PATH"')
    value = out.strip().splitlines()[-1].split('=', 1)[1]
    assert str(build.prefix) in value.split(os.pathsep), out


@needs_colcon
def test_ament_index_and_installed_package_resolve(build: Build) -> None:
    """What launch does: find the share dir by name; and the package imports from install."""
    pytest.importorskip('ament_index_python', reason='ament_index_python is not installed')
    code = ('from ament_index_python.packages import get_package_share_directory as g, '
            'get_package_prefix as p; import rl_control, os; '
            f"print(g('{PACKAGE}')); print(p('{PACKAGE}')); "
            'print(os.path.realpath(rl_control.__file__))')
    out = build.sourced(f'"{sys.executable}" -c "{code}"').strip().splitlines()
    share, prefix, module = out[-3:]
    assert Path(share) == build.share
    assert Path(prefix) == build.prefix
    if build.symlink:  # develop mode: edits in src/ take effect without a rebuild
        assert Path(module) == (REPO / 'src' / PACKAGE / '__init__.py').resolve()
    else:  # a real copy: proves the installed package is complete on its own
        assert Path(module).is_relative_to(build.prefix.resolve()), module
        assets = REPO / 'src' / PACKAGE / 'sim' / 'assets'
        for xml in assets.glob('*.xml'):
            installed = Path(module).parent / 'sim' / 'assets' / xml.name
            assert installed.is_file(), f'package_data {xml.name} not installed'


def test_minimum_python_is_3_10() -> None:
    """setup.py says python_requires >= 3.10 (Humble's Python); vermin checks the code keeps it.

    No 3.10 interpreter is at hand: vermin (pinned in constraints.txt, `dev` extra) reads the
    source and names the newest syntax or library feature any file needs.
    """
    if importlib.util.find_spec('vermin') is None:
        pytest.skip('vermin is not installed (the dev extra installs it)')
    assert "python_requires='>=3.10'" in (REPO / 'setup.py').read_text()
    out = subprocess.run([sys.executable, '-c', 'import sys, vermin; sys.exit(vermin.main())',
                          '--no-tips', '--violations', '-t=3.10-', '--eval-annotations', 'src',
                          'launch', 'bench'],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
