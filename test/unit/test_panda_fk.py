"""Panda forward kinematics against PyBullet (panda-gym's URDF) and the packaged MuJoCo model."""
import os

import numpy as np
import pytest

from rl_control.robots.kinematics import fk, fk_single
from rl_control.robots.kinematics import random_configurations as _random
from rl_control.robots.profiles import FR3, PANDA


def random_configurations(rng: np.random.Generator, n: int) -> np.ndarray:
    return _random(rng, n, PANDA.q_min, PANDA.q_max)


def test_constants_match_franka_datasheet():
    assert PANDA.joint_names == tuple(f'panda_joint{i}' for i in range(1, 8))
    assert PANDA.all_joint_names[-2:] == ('panda_finger_joint1', 'panda_finger_joint2')
    assert FR3.joint_names == tuple(f'fr3_joint{i}' for i in range(1, 8))
    np.testing.assert_allclose(PANDA.qd_max, [2.175] * 4 + [2.61] * 3)
    np.testing.assert_allclose(PANDA.tau_max, [87] * 4 + [12] * 3)
    assert np.all(PANDA.q_min < PANDA.home) and np.all(PANDA.home < PANDA.q_max)


def test_fk_batch_equals_single_and_rejects_bad_shape():
    q = random_configurations(np.random.default_rng(1), 50)
    batch = fk(q)
    assert batch.shape == (50, 3)
    np.testing.assert_allclose(batch, np.stack([fk(x) for x in q]), atol=1e-12)
    assert fk(q.reshape(5, 10, 7)).shape == (5, 10, 3)
    with pytest.raises(ValueError, match='7'):
        fk(np.zeros(6))


def test_unrolled_fk_single_equals_vectorized_chain():
    # fk_single is the hand-unrolled chain (the server's per-tick path); the vectorized loop
    # over the DH table is the reference. Wide angles too, beyond the joint limits.
    rng = np.random.default_rng(7)
    q = np.concatenate([random_configurations(rng, 1000), rng.uniform(-7.0, 7.0, (1000, 7))])
    single = np.array([fk_single(x.tolist()) for x in q])
    np.testing.assert_allclose(single, fk(q), rtol=0, atol=1e-9)


def test_fk_matches_pybullet_panda_gym_ee_link():
    pb = pytest.importorskip('pybullet')
    pybullet_data = pytest.importorskip('pybullet_data')
    # Placed as panda-gym places it. Bullet reports a base's inertial frame, not panda_link0
    # (5 cm higher here), so the base frame offset is the placement itself.
    base = np.array([-0.6, 0.0, 0.0])
    client = pb.connect(pb.DIRECT)
    try:
        body = pb.loadURDF(os.path.join(pybullet_data.getDataPath(), 'franka_panda/panda.urdf'),
                           basePosition=base.tolist(), useFixedBase=True,
                           physicsClientId=client)
        assert pb.getJointInfo(body, 11, physicsClientId=client)[12] == b'panda_grasptarget'
        errors = []
        for q in random_configurations(np.random.default_rng(0), 200):
            for j in range(7):
                pb.resetJointState(body, j, q[j], physicsClientId=client)
            world = pb.getLinkState(body, 11, computeForwardKinematics=True,
                                    physicsClientId=client)[4]
            errors.append(np.linalg.norm(np.array(world) - base - fk(q)))
    finally:
        pb.disconnect(client)
    assert max(errors) < 1e-3


def test_fk_matches_mujoco_ee_site():
    import mujoco

    from rl_control.robots.mujoco_arm import MujocoArm
    sim = MujocoArm(PANDA)
    assert sim.model.jnt_range[:, 0] == pytest.approx(PANDA.q_min)
    assert sim.model.jnt_range[:, 1] == pytest.approx(PANDA.q_max)
    qs = random_configurations(np.random.default_rng(2), 200)
    site = sim.model.site('ee').id
    errors = []
    for q in qs:
        sim.data.qpos[:] = q
        mujoco.mj_kinematics(sim.model, sim.data)
        errors.append(np.linalg.norm(sim.data.site_xpos[site] - fk(q)))
    assert max(errors) < 1e-3
