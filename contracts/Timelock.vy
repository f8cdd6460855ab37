# pragma version ~=0.4.3
"""
@title Timelock
@notice Backstop's governance delay (docs/design.md invariant 10): once `deploy_system` hands
        over, every admin and risk-parameter role of the vault, engine, oracle adapter and
        pools belongs to this contract, so a parameter change is proposed, waits at least
        `get_minimum_delay` seconds in public view, and only then executes. The guardian
        keeps only the pause roles.
@dev snekmate's TimelockController, unchanged. No nonreentrancy pragma: `execute` must be
     able to call back into this contract (e.g. `update_delay`, role changes).
"""

from snekmate.auth import access_control
from snekmate.governance import timelock_controller

initializes: access_control
initializes: timelock_controller[access_control := access_control]

exports: timelock_controller.__interface__


@deploy
def __init__(
    minimum_delay_: uint256,
    proposers_: DynArray[address, 255],
    executors_: DynArray[address, 255],
    admin_: address,
):
    """
    @param minimum_delay_ Minimum delay in seconds between scheduling and executing.
    @param proposers_ Accounts that may propose (and cancel) operations.
    @param executors_ Accounts that may execute ready operations (zero address: anyone).
    @param admin_ Optional bootstrap admin (zero address: none; the timelock administers itself).
    """
    access_control.__init__()
    timelock_controller.__init__(minimum_delay_, proposers_, executors_, admin_)
