"""The contract's one error type."""


class ContractError(ValueError):
    """Inputs do not satisfy the contract; the message names what is missing or wrong."""
