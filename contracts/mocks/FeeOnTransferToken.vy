# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title FeeOnTransferToken
@notice A hostile ERC-20 that burns 1% of every transfer, so the receiver gets less
        than the amount named. The vault must reject it rather than mis-credit.
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
    erc20.balanceOf,
    erc20.allowance,
    erc20.totalSupply,
    erc20.approve,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
)

FEE_BPS: constant(uint256) = 100


@deploy
def __init__(decimals_: uint8):
    ownable.__init__()
    erc20.__init__("Fee Token", "FOT", decimals_, "Fee Token", "1")


@external
def mint(owner: address, amount: uint256):
    """
    @notice Faucet mint (test token only).
    """
    erc20._mint(owner, amount)


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Transfer that burns a 1% fee from the amount.
    """
    self._transfer_with_fee(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice transferFrom that burns a 1% fee from the amount.
    """
    erc20._spend_allowance(owner, msg.sender, amount)
    self._transfer_with_fee(owner, to, amount)
    return True


@internal
def _transfer_with_fee(owner: address, to: address, amount: uint256):
    fee: uint256 = amount * FEE_BPS // 10_000
    erc20._burn(owner, fee)
    erc20._transfer(owner, to, amount - fee)
