"""Only src/rl_control/ros/ may import rclpy or ROS message packages (DESIGN.md)."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / 'src' / 'rl_control'


def ros_imports(path: Path) -> list[str]:
    """Every import of rclpy / *_msgs / *_srvs / *_interfaces (also lazy ones in functions)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split('.')[0]
            if top in ('rclpy', 'rosidl_runtime_py', 'launch', 'launch_ros') or top.endswith(
                    ('_msgs', '_srvs', '_interfaces')):
                found.append(f'{path.relative_to(PKG.parent)}:{node.lineno}: {name}')
    return found


def test_no_ros_imports_outside_ros_package():
    modules = [p for p in PKG.rglob('*.py') if 'ros' not in p.relative_to(PKG).parts[:1]]
    assert len(modules) > 10  # the walk really covers the package
    offenders = [hit for p in modules for hit in ros_imports(p)]
    assert not offenders, 'ROS imports outside rl_control/ros/:\n' + '\n'.join(offenders)


def test_checker_detects_ros_imports(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('def f():\n    from sensor_msgs.msg import JointState\n    import rclpy.node\n')
    global PKG
    saved, PKG = PKG, tmp_path.parent
    try:
        assert len(ros_imports(bad)) == 2
    finally:
        PKG = saved
