"""The import direction of the package's layers (DESIGN.md, "Layers").

Top to bottom: ros, cli, interop, serve | train, envs, bundle, contract, robots, algos. No
module imports a layer above its own (lazy imports inside functions count too); serve and train
sit side by side and never import each other; algos imports nothing of the package and none of
gymnasium or a logger; only ros imports rclpy or ROS message packages.
"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / 'src' / 'rl_control'

# layer -> rank; a module may import layers of lower rank (and its own).
RANKS = {'algos': 0, 'robots': 1, 'contract': 2, 'bundle': 3, 'envs': 4, 'train': 5,
         'serve': 5, 'interop': 6, 'cli': 7, 'ros': 8}
ROS_TOPS = ('rclpy', 'rosidl_runtime_py', 'launch', 'launch_ros', 'ament_index_python')
ALGOS_FORBIDDEN = ('gymnasium', 'gym', 'mujoco', 'pybullet', 'panda_gym', 'tensorboard',
                   'matplotlib', 'logging', 'tqdm')


def layer_of(path: Path, root: Path = PKG) -> str | None:
    """The layer a module belongs to: its sub-package, or `cli` for cli.py (None: the root)."""
    parts = path.relative_to(root).parts
    if len(parts) == 1:
        return 'cli' if parts[0] == 'cli.py' else None
    return parts[0]


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == 'rl_control':  # from rl_control import algos, ...
                found += [(node.lineno, f'rl_control.{a.name}') for a in node.names]
    return found


def violations(root: Path = PKG) -> list[str]:
    """Every import that breaks the layering rules, as 'file:line: reason'."""
    out = []
    for path in sorted(root.rglob('*.py')):
        layer = layer_of(path, root)
        if layer is None:  # rl_control/__init__.py: version + env registration
            continue
        where = path.relative_to(root.parent)
        for line, module in imports(path):
            top = module.split('.')[0]
            is_ros = top in ROS_TOPS or top.endswith(('_msgs', '_srvs', '_interfaces'))
            if is_ros and layer != 'ros':
                out.append(f'{where}:{line}: {module}: only ros/ imports ROS')
            if layer == 'algos' and top in ALGOS_FORBIDDEN:
                out.append(f'{where}:{line}: {module}: algos/ imports no {top}')
            if top != 'rl_control' or module == 'rl_control':
                continue
            target = module.split('.')[1]
            target = 'cli' if target == 'cli' else target
            if target not in RANKS:
                continue  # a top-level module such as rl_control.__init__'s names
            if target == layer:
                continue
            if layer == 'algos':
                out.append(f'{where}:{line}: {module}: algos/ imports nothing of the package')
            elif {layer, target} == {'serve', 'train'}:
                out.append(f'{where}:{line}: {module}: serve/ and train/ never import each '
                           'other')
            elif RANKS[target] > RANKS[layer]:
                out.append(f'{where}:{line}: {module}: {layer}/ imports {target}/, a layer '
                           'above it')
    return out


def test_every_module_is_in_a_layer():
    stray = [p.relative_to(PKG) for p in PKG.rglob('*.py')
             if layer_of(p) not in RANKS and p != PKG / '__init__.py']
    assert not stray, f'modules outside the layers: {stray}'
    assert {layer_of(p) for p in PKG.rglob('*.py')} >= set(RANKS) - {'interop'}


def test_no_module_imports_a_layer_above_it():
    assert len(list(PKG.rglob('*.py'))) > 30  # the walk really covers the package
    bad = violations()
    assert not bad, 'layering violations:\n' + '\n'.join(bad)


@pytest.mark.parametrize('layer, code, reason', [
    ('algos', 'import gymnasium\n', 'algos/ imports no gymnasium'),
    ('algos', 'from rl_control.robots import kinematics\n', 'imports nothing of the package'),
    ('robots', 'def f():\n    from rl_control.envs import factory\n', 'a layer above it'),
    ('serve', 'from rl_control.train import loop\n', 'never import each other'),
    ('train', 'import rclpy\n', 'only ros/ imports ROS'),
    ('contract', 'from sensor_msgs.msg import JointState\n', 'only ros/ imports ROS'),
])
def test_checker_detects_each_kind_of_violation(tmp_path, layer, code, reason):
    root = tmp_path / 'rl_control'
    (root / layer).mkdir(parents=True)
    (root / layer / 'bad.py').write_text(code)
    found = violations(root)
    assert len(found) == 1 and reason in found[0], found


def test_allowed_imports_pass(tmp_path):
    root = tmp_path / 'rl_control'
    (root / 'serve').mkdir(parents=True)
    (root / 'serve' / 'ok.py').write_text(
        'from rl_control.bundle import load_bundle\nfrom rl_control.robots import kinematics\n')
    (root / 'ros').mkdir()
    (root / 'ros' / 'node.py').write_text('import rclpy\nfrom rl_control.serve import ok\n')
    assert violations(root) == []
