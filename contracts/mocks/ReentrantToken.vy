# pragma version ~=0.4.3
"""
@title ReentrantToken
@notice A hostile ERC-20 for reentrancy tests (GMX v1 2025 class). When armed, its
        transfer/transferFrom first call back into a target contract from the token's own
        address (the token acts as the attacker's contract), then move the balance. The
        callback's success and return data are recorded instead of bubbled up, so a test can
        assert that the callback reverted while the outer call went through.
        Never deployed on a non-local network.
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

hook_target: public(address)
hook_data: public(Bytes[1024])
armed: public(bool)
callbacks: public(uint256)
last_success: public(bool)
last_return: public(Bytes[256])


@deploy
def __init__(decimals_: uint8):
    ownable.__init__()
    erc20.__init__("Reentrant Token", "REENT", decimals_, "Reentrant Token", "1")


@external
def mint(owner: address, amount: uint256):
    """
    @notice Faucet mint (test token only).
    """
    erc20._mint(owner, amount)


@external
def arm(target: address, data: Bytes[1024]):
    """
    @notice Call `target` with `data` inside the next transfer or transferFrom (once).
    """
    self.hook_target = target
    self.hook_data = data
    self.armed = True


@external
def execute(target: address, data: Bytes[1024]) -> Bytes[256]:
    """
    @notice Act as an account: call `target` with `data` from this contract (reverts bubble).
    """
    return raw_call(target, data, max_outsize=256)


@external
def transfer(to: address, amount: uint256) -> bool:
    self._hook()
    erc20._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self._hook()
    erc20._spend_allowance(owner, msg.sender, amount)
    erc20._transfer(owner, to, amount)
    return True


@internal
def _hook():
    if not self.armed:
        return
    self.armed = False
    success: bool = False
    response: Bytes[256] = b""
    success, response = raw_call(
        self.hook_target, self.hook_data, max_outsize=256, revert_on_failure=False
    )
    self.callbacks += 1
    self.last_success = success
    self.last_return = response
