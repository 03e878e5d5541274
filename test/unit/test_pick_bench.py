"""`rl-control bench-pick` (envs/pick_bench.py): fixed episodes, the scripted reference, a bundle.

A handful of the committed episodes each (about 1 s of CPU per 6 s episode)."""
import json
import shutil

import gymnasium as gym
import numpy as np
from pick_helpers import save_zero_pick_bundle
import pytest
import yaml

from rl_control.cli import main
from rl_control.envs import pick_bench

ENV_ID = 'rl_control/FrankaPickPlace-v1'
KEYS = {'episodes', 'success', 'held', 'placed', 'grasped', 'lifted', 'dropped',
        'final_distance_median', 'final_distance_max', 'settle_time_s_median',
        'grasp_time_s_median', 'contact_reflexes', 'reflexes', 'engine', 'robot', 'randomized',
        'policy', 'success_distance', 'episode_s', 'solved_at_start'}


@pytest.fixture(scope='module')
def episodes():
    return pick_bench.load_episodes(pick_bench.default_episodes_file())


@pytest.fixture(scope='module')
def scripted(episodes):
    """The scripted pick on the first four fixed episodes (nominal dynamics)."""
    cubes, goals = episodes
    return pick_bench.run(None, None, cubes[:4], goals[:4])


@pytest.fixture(scope='module')
def zero_bundle(tmp_path_factory):
    """A pick-and-place bundle whose actor answers 0: arm still, hand left open (do nothing)."""
    env = gym.make(ENV_ID)
    path = save_zero_pick_bundle(env, tmp_path_factory.mktemp('pick') / 'zero',
                                 'test (do-nothing actor)')
    env.close()
    return path


def _cli(capsys, *argv):
    """(exit status, JSON summary or None, stderr lines) of `rl-control bench-pick ...`."""
    rc = main(['bench-pick', *map(str, argv)])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    summary = json.loads(lines[-1]) if rc == 0 and '--json' in argv else None
    return rc, summary, err.strip().splitlines()


def test_the_scripted_pick_holds_the_cube_on_the_first_fixed_episodes(scripted, episodes):
    s = scripted['summary']
    assert s['episodes'] == 4 and s['policy'] == 'scripted' and not s['randomized']
    assert s['held'] >= 0.75, [e['final_distance'] for e in scripted['episodes']]
    assert s['grasped'] == 1.0 and s['lifted'] == 1.0 and s['dropped'] == 0.0
    assert s['final_distance_max'] < 0.05 and s['solved_at_start'] == 0
    assert s['reflexes'] == 0 and s['contact_reflexes'] == 0
    # Each episode ran on its file entry: the cube started where the file puts it.
    for e, cube, goal in zip(scripted['episodes'], *episodes, strict=False):
        np.testing.assert_allclose(e['cube_start'], cube, atol=1e-6)
        np.testing.assert_allclose(e['goal'], goal, atol=1e-9)


def test_the_fixed_episodes_are_the_same_on_every_run(scripted, episodes, tmp_path):
    cubes, goals = episodes
    again = pick_bench.load_episodes(pick_bench.default_episodes_file())
    np.testing.assert_array_equal(again[0], cubes)
    np.testing.assert_array_equal(again[1], goals)
    assert len(cubes) == 100
    # The file is what its header says: the task's samplers, seed 0 (rounded to 1 um).
    seed = yaml.safe_load(pick_bench.default_episodes_file().read_text())['seed']
    drawn = pick_bench.load_episodes(pick_bench.write_episodes(tmp_path / 'e.yaml', 5, seed))
    np.testing.assert_allclose(drawn[0], cubes[:5], atol=2e-6)
    np.testing.assert_allclose(drawn[1], goals[:5], atol=2e-6)
    # A rerun of episode 0 is the same episode, sample for sample.
    rerun = pick_bench.run(None, None, cubes[:1], goals[:1])['episodes'][0]
    first = scripted['episodes'][0]
    assert rerun['cube_start'] == first['cube_start']
    assert rerun['distances'] == first['distances'] and rerun['held'] == first['held']


def test_a_do_nothing_bundle_scores_no_hold_and_no_grasp(zero_bundle, capsys, tmp_path,
                                                         episodes):
    rc, s, _ = _cli(capsys, zero_bundle, '--episodes', 3, '--json', '--out', tmp_path / 'o.json')
    assert rc == 0 and s['policy'] == str(zero_bundle)
    assert s['held'] == 0.0 and s['grasped'] == 0.0 and s['lifted'] == 0.0
    assert s['placed'] == 0.0 and s['solved_at_start'] == 0
    eps = json.loads((tmp_path / 'o.json').read_text())['episodes']
    assert [e['hand_commands'] for e in eps] == [0, 0, 0]  # the hand was never told to close
    # The floor: an episode whose cube starts within 5 cm of a table goal is held by doing
    # nothing, and is counted as such (episode 37 of the file).
    from rl_control.bundle import load_bundle

    spec, policy = load_bundle(zero_bundle)
    cubes, goals = episodes
    out = pick_bench.run(spec, policy, cubes[37:38], goals[37:38])['summary']
    assert out['held'] == 1.0 and out['solved_at_start'] == 1 and out['grasped'] == 0.0


def test_the_json_summary_has_the_fields_and_the_plot_is_written(capsys, tmp_path):
    png = tmp_path / 'pick.png'
    rc, s, err = _cli(capsys, 'scripted', '--episodes', 1, '--json', '--plot', png)
    assert rc == 0 and set(s) == KEYS, set(s) ^ KEYS
    assert s['episodes'] == 1 and s['engine'] == 'mujoco' and s['episode_s'] == 6.0
    assert any(line.startswith('held (cube within 5 cm') for line in err)  # the report, stderr
    assert png.stat().st_size > 10_000


def test_a_bad_policy_is_one_error_line_naming_it(capsys, tmp_path, zero_bundle):
    missing = tmp_path / 'no_such_bundle'
    rc, _, err = _cli(capsys, missing)
    assert rc == 2 and len(err) == 1 and str(missing) in err[0] and 'scripted' in err[0]
    # A bundle of another task: refused by name before any episode runs.
    reach = tmp_path / 'reach'
    shutil.copytree(zero_bundle, reach)
    spec = yaml.safe_load((reach / 'policy.yaml').read_text())
    spec['task_name'] = 'reach'
    (reach / 'policy.yaml').write_text(yaml.safe_dump(spec))
    rc, _, err = _cli(capsys, reach, '--episodes', 1)
    assert rc == 2 and len(err) == 1 and 'not a pick-and-place bundle' in err[0]
    assert str(reach) in err[0]


def test_an_episodes_file_without_goals_is_refused_naming_the_entry(tmp_path):
    bad = tmp_path / 'eps.yaml'
    bad.write_text(yaml.safe_dump({'episodes': [{'cube': [0.6, 0, 0.02, 0, 0, 0, 1],
                                                 'goal': [0.6, 0, 0.1]},
                                                {'cube': [0.6, 0, 0.02, 0, 0, 0, 1]}]}))
    with pytest.raises(ValueError, match=r'eps.yaml: episode 1: needs `cube`'):
        pick_bench.load_episodes(bad)


def test_the_shipped_bundle_picks_and_holds_the_cube_from_the_table(episodes):
    """models/panda_pick_place_sac (issue 21; its 100-episode figures are in bench/README.md)
    on four fixed episodes it held in that benchmark (3-6), in process, nominal: it grasps the
    cube off the table, lifts it and holds it at the goal, with no reflex and no drop."""
    from pathlib import Path

    from rl_control.bundle import load_bundle

    spec, policy = load_bundle(Path(__file__).resolve().parents[2] / 'models'
                               / 'panda_pick_place_sac')
    cubes, goals = episodes
    out = pick_bench.run(spec, policy, cubes[3:7], goals[3:7])
    s = out['summary']
    assert s['held'] >= 0.75 and s['grasped'] >= 0.75, [
        (e['grasped'], e['final_distance']) for e in out['episodes']]
    assert s['reflexes'] == 0 and s['contact_reflexes'] == 0 and s['dropped'] == 0.0
    assert s['solved_at_start'] == 0  # each was picked, none solved by doing nothing
