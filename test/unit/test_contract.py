"""The observation/action contract: by-name mapping, errors that say what is wrong, YAML."""
import numpy as np
import pytest
import yaml

from rl_control.contract.spec import (
    ActionSpec,
    ContractError,
    ObservationSpec,
    action_to_command,
    build_observation,
    contract_from_yaml,
    contract_to_yaml,
)
from rl_control.robots.kinematics import fk
from rl_control.robots.profiles import FR3, PANDA

ARM = PANDA.joint_names
FULL = ObservationSpec(ARM, ('joint_pos', 'joint_vel', 'ee_pos', 'goal'))


def _state(rng):
    q = PANDA.home + rng.uniform(-0.3, 0.3, 7)
    return q, rng.normal(size=7)


def test_layout_and_values():
    rng = np.random.default_rng(0)
    q, qd = _state(rng)
    goal = np.array([0.5, -0.1, 0.2])
    obs = build_observation(FULL, ARM, q, qd, goal)
    assert obs.dtype == np.float32 and obs.shape == (FULL.size,) == (20,)
    np.testing.assert_allclose(obs[:7], q, rtol=1e-6)
    np.testing.assert_allclose(obs[7:14], qd, rtol=1e-6)
    np.testing.assert_allclose(obs[FULL.term_slice('ee_pos')], fk(q), atol=1e-6)
    np.testing.assert_allclose(obs[FULL.term_slice('goal')], goal, rtol=1e-6)


def test_shuffled_order_and_extra_joints_give_identical_observation():
    rng = np.random.default_rng(1)
    q, qd = _state(rng)
    goal = [0.6, 0.0, 0.1]
    ref = build_observation(FULL, ARM, q, qd, goal)
    names = list(ARM) + ['panda_finger_joint1', 'panda_finger_joint2', 'base_yaw']
    pos = np.concatenate([q, [0.02, 0.02, 9.0]])
    vel = np.concatenate([qd, [0.0, 0.0, 5.0]])
    perm = rng.permutation(len(names))
    shuffled = build_observation(FULL, [names[i] for i in perm], pos[perm], vel[perm], goal)
    np.testing.assert_array_equal(shuffled, ref)
    # the cached mapping must not leak between different name orders
    again = build_observation(FULL, names, pos, vel, goal)
    np.testing.assert_array_equal(again, ref)


def test_missing_joint_is_named_with_what_was_received():
    names = [n for n in ARM if n != 'panda_joint4']
    with pytest.raises(ContractError, match='panda_joint4') as err:
        build_observation(FULL, names, np.zeros(6), np.zeros(6), [0, 0, 0])
    assert 'panda_joint1' in str(err.value)       # lists what was received
    assert "'panda_joint1'" not in str(err.value).split('received')[0]   # only the missing one


def test_wrong_lengths_and_goal_errors():
    with pytest.raises(ContractError, match='positions'):
        build_observation(FULL, ARM, np.zeros(6), np.zeros(7), [0, 0, 0])
    with pytest.raises(ContractError, match='velocities'):
        build_observation(FULL, ARM, np.zeros(7), np.zeros(8), [0, 0, 0])
    with pytest.raises(ContractError, match='goal'):
        build_observation(FULL, ARM, np.zeros(7), np.zeros(7), None)
    with pytest.raises(ContractError, match='goal'):
        build_observation(FULL, ARM, np.zeros(7), np.zeros(7), [0, 0])
    with pytest.raises(ContractError, match='unknown'):
        ObservationSpec(ARM, ('joint_pos', 'torque'))


def test_fr3_names_use_the_same_kinematics():
    spec = ObservationSpec(FR3.joint_names, FULL.terms)
    q, qd = _state(np.random.default_rng(2))
    np.testing.assert_array_equal(build_observation(spec, FR3.joint_names, q, qd, [0] * 3),
                                  build_observation(FULL, ARM, q, qd, [0] * 3))


def _act_spec():
    return ActionSpec('joint_velocity', ARM, scale=0.5 * PANDA.qd_max,
                      low=-PANDA.qd_max, high=np.full(7, 0.6))


def test_action_scaling_and_clamping():
    spec = _act_spec()
    a = np.array([0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 1.0])
    cmd = action_to_command(spec, a)
    s = spec.scale
    np.testing.assert_allclose(cmd[:4], [0.5 * s[0], -0.5 * s[1], 0.6, -s[3]])  # high clamps
    np.testing.assert_allclose(cmd[4:6], [0.6, -s[5]])          # |a|>1 clipped before scaling
    assert cmd[6] == pytest.approx(0.6)
    for bad in ([np.nan] + [0.0] * 6, [np.inf] + [0.0] * 6):
        with pytest.raises(ContractError, match='finite'):
            action_to_command(spec, bad)
    with pytest.raises(ContractError, match='shape'):
        action_to_command(spec, np.zeros(6))
    with pytest.raises(ContractError, match='scale'):
        ActionSpec('joint_velocity', ARM, scale=np.ones(6), low=-np.ones(7), high=np.ones(7))
    with pytest.raises(ContractError, match='type'):
        ActionSpec('joint_position', ARM, scale=np.ones(7), low=-np.ones(7), high=np.ones(7))


def test_yaml_round_trip_through_text():
    d = contract_to_yaml(FULL, _act_spec(), 0.04)
    text = yaml.safe_dump(d)
    back = contract_from_yaml(yaml.safe_load(text))
    assert back.obs_spec == FULL
    assert back.control_period_s == 0.04
    assert back.act_spec.type == 'joint_velocity' and back.act_spec.joint_names == ARM
    np.testing.assert_array_equal(back.act_spec.scale, _act_spec().scale)
    assert d['observation']['terms'] == [{'name': 'joint_pos', 'size': 7},
                                         {'name': 'joint_vel', 'size': 7},
                                         {'name': 'ee_pos', 'size': 3},
                                         {'name': 'goal', 'size': 3}]
    assert back.to_yaml() == d


@pytest.mark.parametrize('path, match', [
    (('action', 'scale'), 'action.scale'),
    (('joint_names',), 'joint_names'),
    (('observation', 'terms'), 'observation.terms'),
    (('control_period_s',), 'control_period_s'),
])
def test_yaml_missing_field_is_named(path, match):
    d = contract_to_yaml(FULL, _act_spec(), 0.04)
    target = d
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    with pytest.raises(ContractError, match=match):
        contract_from_yaml(d)


def test_yaml_bad_sizes_are_named():
    d = contract_to_yaml(FULL, _act_spec(), 0.04)
    d['observation']['terms'][2]['size'] = 4
    with pytest.raises(ContractError, match=r'terms\[2\].size'):
        contract_from_yaml(d)
    d = contract_to_yaml(FULL, _act_spec(), 0.04)
    d['action']['low'] = [0.0] * 6
    with pytest.raises(ContractError, match='action.low'):
        contract_from_yaml(d)
