# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title MockERC20
@notice snekmate's ERC-20 with settable decimals and an open faucet `mint`, standing in
        for USDC on local chains and in tests. Never deployed on a non-local network.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

implements: IERC20
implements: IERC20Detailed

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    erc20.IERC20,
    erc20.IERC20Detailed,
    erc20.burn,
)


@deploy
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8):
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")


@external
def mint(owner: address, amount: uint256):
    """
    @notice Faucet: mint `amount` to `owner` (test token only).
    """
    erc20._mint(owner, amount)
