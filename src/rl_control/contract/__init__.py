"""The observation/action contract shared by the training envs and the policy server.

`build_observation` is the one function that turns (joint names, positions, velocities, goal)
into the vector a policy sees, in training and on a robot.
"""
from rl_control.contract.spec import (
    ActionSpec,
    ContractError,
    ObservationSpec,
    RobotContract,
    action_to_command,
    build_observation,
    contract_from_yaml,
    contract_to_yaml,
    gripper_entry,
)

__all__ = ['ActionSpec', 'ContractError', 'ObservationSpec', 'RobotContract',
           'action_to_command', 'build_observation', 'contract_from_yaml', 'contract_to_yaml',
           'gripper_entry']
