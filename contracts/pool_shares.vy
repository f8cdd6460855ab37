# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title pool_shares
@notice ERC-4626 share accounting shared by the segment InsurancePools and the BackstopPool.
        - Internal accounting: the pool counts the assets it manages itself; tokens sent to
          it directly (donations) are ignored, so they cannot move the share price.
        - Virtual shares/assets (decimals offset, as OpenZeppelin) against first-depositor
          inflation: shares = assets * (supply + 10**OFFSET) / (total_assets + 1).
          Rounding is always in the pool's favour: deposit and redeem round down, mint and
          withdraw round up.
        - Income vests linearly (Yearn v3 profit unlocking). New income that arrives while
          older income still vests is merged into one bucket whose end is the
          amount-weighted average of the old remaining time and a full `income_vesting`
          period. totalAssets() = managed assets - income still unvested.
        - Two prices, both in the pool's favour, so that nobody gains from income that
          reached the pool before they held its shares:
            entry (deposit, mint, previewDeposit, previewMint): managed assets, i.e.
              INCLUDING unvested income. A newcomer buys the unvested income at full value,
              so it gains nothing when that income vests (no JIT capture of a fee spike).
            exit (redeem, withdraw, previews, maxWithdraw) and convertTo*, totalAssets,
              assets_per_share: EXCLUDING unvested income. A leaver never takes income that
              has not vested yet.
          With no shares outstanding (first entry) the entry price is the exit price: unvested
          income nobody holds vests to the first holders instead of staying with the virtual
          shares (and the first deposit stays at par).
          entry >= exit, so deposit-then-redeem never profits (invariant 7), and a deposit
          never lowers the exit price (invariant 6): what a newcomer pays above the exit price
          is the incumbents' share of the unvested income, which they keep. A pool whose
          income accrues elsewhere first (InsurancePool: the vault's unswept fees) must bring
          it in before pricing an entry; the `_deposit`/`_mint` internals and the `pending`
          argument of the preview internals are for that.
        - Total share supply never exceeds 2**160 - 1 (deposit and mint revert past it), so
          every redeem request fits its 160-bit field.
        - Losses (_take_loss) are charged first to unvested income (not yet counted), then to
          the vested assets. No share is burned: assets per share fall for every holder,
          including shares under a redeem request.
        - Withdrawals are request -> cooldown -> window (ERC-7540-like). Requested shares stay
          in the owner's balance and keep bearing losses and earning income. A transfer out of
          an account clamps its request to the balance left, so shares moved away and back can
          never use an old request to skip the cooldown.
        - Pause (guardian) blocks deposit and mint only. Requests, redeems and withdrawals keep
          working so the guardian can never lock LP funds; the loss waterfall (cover/draw) and
          income keep working too.
@dev Storage packs the hot state in two slots:
       _assets : managed assets (low 128) | income locked at the last checkpoint (high 128)
       _clock  : last checkpoint time (low 64) | vesting end time (high 64 of the low 128) | high 128
                 kept for the importing pool (InsurancePool: refillable bad debt), never read here and
                 preserved by every write, so a cover that checkpoints pays for one slot write only
     unvested(t) = ceil(locked * (end - t) / (end - last)) for t < end, else 0: it only ever
     falls between checkpoints, and a checkpoint keeps it unchanged, so totalAssets() never
     jumps except through income (up), deposits/redeems (price-neutral up to rounding in the
     pool's favour) and _take_loss (down).
     Requests pack shares (low 160) | unlock_at (48) | expires_at (48) in one slot per owner.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from ethereum.ercs import IERC4626

implements: IERC20
implements: IERC20Detailed
implements: IERC4626

from snekmate.auth import ownable
from snekmate.tokens import erc20
from snekmate.utils import math

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.approve,
    erc20.allowance,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
)


# ---------------------------------------------------------------- constants

DECIMALS_OFFSET: public(constant(uint256)) = 6
VIRTUAL_SHARES: constant(uint256) = 10**DECIMALS_OFFSET
MAX_ASSET_DECIMALS: constant(uint256) = 18

DEFAULT_COOLDOWN: constant(uint256) = 7 * 86400
DEFAULT_WINDOW: constant(uint256) = 2 * 86400
DEFAULT_INCOME_VESTING: constant(uint256) = 86400
MAX_DURATION: constant(uint256) = 365 * 86400
MIN_WINDOW: constant(uint256) = 3600

MASK_48: constant(uint256) = 2**48 - 1
MASK_64: constant(uint256) = 2**64 - 1
MASK_128: constant(uint256) = 2**128 - 1
MASK_160: constant(uint256) = 2**160 - 1
# the shares field of a packed redeem request: capping the supply at it keeps every request exact
_MAX_SUPPLY: constant(uint256) = MASK_160


# ---------------------------------------------------------------- storage

asset: public(immutable(address))
_ASSET: immutable(IERC20)
_ONE_SHARE: immutable(uint256)

_assets: uint256
_clock: uint256
_requests: HashMap[address, uint256]

paused: public(bool)
deposit_cap: public(uint256)
cooldown: public(uint256)
redeem_window: public(uint256)
income_vesting: public(uint256)


# ---------------------------------------------------------------- events

event RedeemRequested:
    owner: indexed(address)
    shares: uint256
    unlock_at: uint256
    expires_at: uint256

event RedeemCancelled:
    owner: indexed(address)
    shares: uint256

event IncomeAdded:
    amount: uint256
    unvested: uint256
    vesting_end: uint256

event ParamSet:
    param: String[32]
    value: uint256

event PauseSet:
    account: indexed(address)
    paused: bool


# ---------------------------------------------------------------- constructor

@deploy
def __init__(asset_: IERC20, name_: String[25], symbol_: String[5], eip712_name_: String[50]):
    """
    @param asset_ The quote token (at most 18 decimals, no fee on transfer).
    @param name_ Share token name.
    @param symbol_ Share token symbol.
    @param eip712_name_ EIP-712 domain name of the share token (permit).
    """
    decimals: uint256 = convert(staticcall IERC20Detailed(asset_.address).decimals(), uint256)
    assert decimals <= MAX_ASSET_DECIMALS, "pool: asset decimals > 18"
    ownable.__init__()
    erc20.__init__(name_, symbol_, convert(decimals + DECIMALS_OFFSET, uint8), eip712_name_, "1")
    asset = asset_.address
    _ASSET = asset_
    _ONE_SHARE = 10 ** (decimals + DECIMALS_OFFSET)
    self.deposit_cap = max_value(uint256)
    self.cooldown = DEFAULT_COOLDOWN
    self.redeem_window = DEFAULT_WINDOW
    self.income_vesting = DEFAULT_INCOME_VESTING


# ---------------------------------------------------------------- ERC-20 (request-aware)

@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice ERC-20 transfer. A pending redeem request of the sender is clamped to the
            balance it keeps.
    """
    self._clamp_request(msg.sender, amount)
    erc20._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice ERC-20 transferFrom. A pending redeem request of `owner` is clamped to the
            balance it keeps.
    """
    erc20._spend_allowance(owner, msg.sender, amount)
    self._clamp_request(owner, amount)
    erc20._transfer(owner, to, amount)
    return True


# ---------------------------------------------------------------- ERC-4626 views

@external
@view
def totalAssets() -> uint256:
    """
    @notice Assets that back the shares now: managed assets minus income still vesting.
    """
    return self._total_assets()


@external
@view
def convertToShares(assets: uint256) -> uint256:
    """
    @notice Shares worth `assets` at the current price, rounded down.
    """
    return self._to_shares(assets, self._total_assets(), False)


@external
@view
def convertToAssets(shares: uint256) -> uint256:
    """
    @notice Assets worth `shares` at the current price, rounded down.
    """
    return self._to_assets(shares, self._total_assets(), False)


@external
@view
def maxDeposit(receiver: address) -> uint256:
    """
    @notice Most assets a deposit can take now: 0 while paused, else the room under the cap
            and under the 2**160 - 1 share supply (at the entry price).
    @param receiver Ignored (no per-receiver limit).
    @return uint256 Quote amount.
    """
    return self._max_deposit()


@external
@view
def maxMint(receiver: address) -> uint256:
    """
    @notice Most shares a mint can create now (0 while paused or at the cap; never past the
            2**160 - 1 share supply).
    @param receiver Ignored (no per-receiver limit).
    @return uint256 Shares.
    """
    return self._max_mint(0)


@external
@view
def maxWithdraw(owner: address) -> uint256:
    """
    @notice Most assets `owner` can withdraw now: the value of its redeemable request, 0
            outside the request's window.
    """
    return self._to_assets(self._redeemable(owner), self._total_assets(), False)


@external
@view
def maxRedeem(owner: address) -> uint256:
    """
    @notice Most shares `owner` can redeem now: min(requested, balance) inside the window
            [unlock_at, expires_at], else 0.
    """
    return self._redeemable(owner)


@external
@view
def previewDeposit(assets: uint256) -> uint256:
    """
    @notice Shares a deposit of `assets` mints now (rounded down, at the entry price: managed
            assets including unvested income).
    @param assets Quote amount.
    @return uint256 Shares.
    """
    return self._preview_deposit(assets, 0)


@external
@view
def previewMint(shares: uint256) -> uint256:
    """
    @notice Assets a mint of `shares` costs now (rounded up, at the entry price: managed
            assets including unvested income).
    @param shares Shares to mint.
    @return uint256 Quote amount.
    """
    return self._preview_mint(shares, 0)


@external
@view
def previewWithdraw(assets: uint256) -> uint256:
    """
    @notice Shares a withdrawal of `assets` burns now (rounded up).
    """
    return self._to_shares(assets, self._total_assets(), True)


@external
@view
def previewRedeem(shares: uint256) -> uint256:
    """
    @notice Assets a redemption of `shares` pays now (rounded down).
    """
    return self._to_assets(shares, self._total_assets(), False)


# ---------------------------------------------------------------- ERC-4626 actions

@external
def deposit(assets: uint256, receiver: address) -> uint256:
    """
    @notice Deposit `assets` of the quote token and mint shares to `receiver`.
    @param assets Quote amount (the caller approved it).
    @param receiver Owner of the new shares.
    @return uint256 Shares minted (rounded down, at the entry price).
    """
    return self._deposit(assets, receiver)


@external
def mint(shares: uint256, receiver: address) -> uint256:
    """
    @notice Mint exactly `shares` to `receiver`, pulling the assets they cost.
    @param shares Shares to mint.
    @param receiver Owner of the new shares.
    @return uint256 Assets pulled (rounded up, at the entry price).
    """
    return self._mint(shares, receiver)


@external
def withdraw(assets: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Withdraw exactly `assets` for `owner`'s requested shares inside its window.
    @param assets Quote amount to send to `receiver`.
    @param receiver Receiver of the quote token.
    @param owner Owner of the shares (caller or a spender with allowance).
    @return uint256 Shares burned (rounded up).
    """
    assert assets > 0, "pool: zero amount"
    shares: uint256 = self._to_shares(assets, self._total_assets(), True)
    self._exit(assets, shares, receiver, owner)
    return shares


@external
def redeem(shares: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Redeem `shares` of `owner`'s request inside its window.
    @param shares Shares to burn (at most maxRedeem(owner)).
    @param receiver Receiver of the quote token.
    @param owner Owner of the shares (caller or a spender with allowance).
    @return uint256 Assets paid (rounded down).
    """
    assert shares > 0, "pool: zero amount"
    assets: uint256 = self._to_assets(shares, self._total_assets(), False)
    assert assets > 0, "pool: zero assets"
    self._exit(assets, shares, receiver, owner)
    return assets


# ---------------------------------------------------------------- redeem requests

@external
def request_redeem(shares: uint256) -> (uint256, uint256):
    """
    @notice Ask to redeem `shares` of the caller's balance. They become redeemable after the
            cooldown, during the window; until then they stay in the balance and keep bearing
            losses and earning income. A new request replaces the previous one.
    @param shares Shares to request (at most the caller's balance).
    @return (uint256, uint256) unlock_at, expires_at.
    """
    assert shares > 0, "pool: zero amount"
    assert shares <= erc20.balanceOf[msg.sender], "pool: request exceeds balance"
    unlock_at: uint256 = block.timestamp + self.cooldown
    expires_at: uint256 = unlock_at + self.redeem_window
    self._requests[msg.sender] = shares | (unlock_at << 160) | (expires_at << 208)
    log RedeemRequested(owner=msg.sender, shares=shares, unlock_at=unlock_at, expires_at=expires_at)
    return unlock_at, expires_at


@external
def cancel_redeem():
    """
    @notice Cancel the caller's pending redeem request.
    """
    request: uint256 = self._requests[msg.sender]
    assert request != 0, "pool: no request"
    self._requests[msg.sender] = 0
    log RedeemCancelled(owner=msg.sender, shares=request & MASK_160)


@external
@view
def pending_request(owner: address) -> (uint256, uint256, uint256):
    """
    @notice The redeem request of `owner`: (shares, unlock_at, expires_at); zeros if none.
    """
    request: uint256 = self._requests[owner]
    return request & MASK_160, (request >> 160) & MASK_48, request >> 208


# ---------------------------------------------------------------- pool views

@external
@view
def assets_per_share() -> uint256:
    """
    @notice Assets (quote units) that 10**decimals shares are worth now, rounded down.
    """
    return self._to_assets(_ONE_SHARE, self._total_assets(), False)


@external
@view
def managed_assets() -> uint256:
    """
    @notice All assets the pool accounts for, including income still vesting.
    """
    return self._assets & MASK_128


@external
@view
def vested_income() -> uint256:
    """
    @notice Income of the current vesting bucket already vested (counted in totalAssets).
    """
    locked: uint256 = self._assets >> 128
    return locked - self._unvested(locked, self._clock)


@external
@view
def unvested_income() -> uint256:
    """
    @notice Income still vesting (not yet counted in totalAssets).
    """
    return self._unvested(self._assets >> 128, self._clock)


@external
@view
def vesting_end() -> uint256:
    """
    @notice Time at which all income received so far is vested.
    """
    return (self._clock >> 64) & MASK_64


# ---------------------------------------------------------------- internal: accounting

@internal
@view
def _unvested(locked: uint256, clock: uint256) -> uint256:
    end: uint256 = (clock >> 64) & MASK_64
    if locked == 0 or block.timestamp >= end:
        return 0
    last: uint256 = clock & MASK_64
    return math._mul_div(locked, end - block.timestamp, end - last, True)


@internal
@view
def _total_assets() -> uint256:
    state: uint256 = self._assets
    return (state & MASK_128) - self._unvested(state >> 128, self._clock)


@internal
@view
def _to_shares(assets: uint256, total: uint256, roundup: bool) -> uint256:
    return math._mul_div(assets, erc20.totalSupply + VIRTUAL_SHARES, total + 1, roundup)


@internal
@view
def _to_assets(shares: uint256, total: uint256, roundup: bool) -> uint256:
    return math._mul_div(shares, total + 1, erc20.totalSupply + VIRTUAL_SHARES, roundup)


@internal
@view
def _max_deposit() -> uint256:
    """
    @dev min(room under the deposit cap, most assets whose shares still fit under
         _MAX_SUPPLY at the entry price). Income brought in before the entry (a sweep) only
         raises the entry price, so this never exceeds what a deposit accepts.
    """
    if self.paused:
        return 0
    # a deposit of a mints floor(a * (S + V) / (E + 1)) <= R shares iff a < (R + 1) * (E + 1) / (S + V)
    # (E: the entry total)
    supply: uint256 = erc20.totalSupply
    room: uint256 = math._mul_div(_MAX_SUPPLY - supply + 1, self._entry_total(0) + 1, supply + VIRTUAL_SHARES, True) - 1
    cap: uint256 = self.deposit_cap
    if cap == max_value(uint256):
        return room
    total: uint256 = self._total_assets()
    if total >= cap:
        return 0
    return min(room, cap - total)


@internal
@view
def _max_mint(pending: uint256) -> uint256:
    """
    @dev Most shares a mint can create now, with `pending` income the mint brings in first.
    """
    if self.paused:
        return 0
    left: uint256 = _MAX_SUPPLY - erc20.totalSupply
    cap: uint256 = self.deposit_cap
    if cap == max_value(uint256):
        return left
    total: uint256 = self._total_assets()
    if total >= cap:
        return 0
    return min(left, self._to_shares(cap - total, self._entry_total(pending), False))


@internal
@view
def _entry_total(pending: uint256) -> uint256:
    """
    @dev The assets an entry is priced on: managed assets (unvested income included) plus
         `pending` income the entry brings in first. With no shares outstanding the unvested
         income belongs to nobody: pricing it in would only hand it to the virtual shares and
         take the first deposit far off par, so the first entry prices on vested assets
         (totalAssets) and that income vests to the first holders.
    """
    if erc20.totalSupply == 0:
        return self._total_assets()
    return (self._assets & MASK_128) + pending


@internal
@view
def _preview_deposit(assets: uint256, pending: uint256) -> uint256:
    """
    @dev Shares a deposit of `assets` mints after `pending` income is brought in (rounded down).
    """
    return self._to_shares(assets, self._entry_total(pending), False)


@internal
@view
def _preview_mint(shares: uint256, pending: uint256) -> uint256:
    """
    @dev Assets a mint of `shares` costs after `pending` income is brought in (rounded up).
    """
    return self._to_assets(shares, self._entry_total(pending), True)


@internal
def _deposit(assets: uint256, receiver: address) -> uint256:
    """
    @dev deposit at the entry price (managed assets, unvested income included), rounded down.
    """
    assert assets > 0, "pool: zero amount"
    self._check_deposit(assets)
    shares: uint256 = self._to_shares(assets, self._entry_total(0), False)
    assert shares > 0, "pool: zero shares"
    self._enter(assets, shares, receiver)
    return shares


@internal
def _mint(shares: uint256, receiver: address) -> uint256:
    """
    @dev mint at the entry price (managed assets, unvested income included), rounded up.
    """
    assert shares > 0, "pool: zero amount"
    assets: uint256 = self._to_assets(shares, self._entry_total(0), True)
    assert assets > 0, "pool: zero amount"
    self._check_deposit(assets)
    self._enter(assets, shares, receiver)
    return assets


@internal
@view
def _check_deposit(assets: uint256):
    assert not self.paused, "pool: paused"
    cap: uint256 = self.deposit_cap
    if cap != max_value(uint256):
        assert self._total_assets() + assets <= cap, "pool: deposit cap exceeded"


@internal
def _enter(assets: uint256, shares: uint256, receiver: address):
    # every redeem request packs its shares in 160 bits: keep the whole supply within them
    assert shares <= _MAX_SUPPLY - erc20.totalSupply, "pool: share supply overflow"
    self._pull(msg.sender, assets)
    state: uint256 = self._assets
    managed: uint256 = (state & MASK_128) + assets
    assert managed <= MASK_128, "pool: too many assets"
    self._assets = (state & ~MASK_128) | managed
    erc20._mint(receiver, shares)
    log IERC4626.Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)


@internal
def _exit(assets: uint256, shares: uint256, receiver: address, owner: address):
    redeemable: uint256 = self._redeemable(owner)
    assert redeemable > 0, "pool: no redeemable request"
    assert shares <= redeemable, "pool: exceeds request"
    if msg.sender != owner:
        erc20._spend_allowance(owner, msg.sender, shares)
    request: uint256 = self._requests[owner]
    left: uint256 = (request & MASK_160) - shares
    if left == 0:
        self._requests[owner] = 0
    else:
        self._requests[owner] = (request & ~MASK_160) | left
    erc20._burn(owner, shares)
    # assets <= totalAssets <= managed: a redemption never touches unvested income.
    self._assets = self._assets - assets
    assert extcall _ASSET.transfer(receiver, assets, default_return_value=True), "pool: transfer failed"
    log IERC4626.Withdraw(sender=msg.sender, receiver=receiver, owner=owner, assets=assets, shares=shares)


@internal
@view
def _redeemable(owner: address) -> uint256:
    request: uint256 = self._requests[owner]
    if request == 0:
        return 0
    if block.timestamp < (request >> 160) & MASK_48 or block.timestamp > request >> 208:
        return 0
    return min(request & MASK_160, erc20.balanceOf[owner])


@internal
def _clamp_request(owner: address, amount: uint256):
    request: uint256 = self._requests[owner]
    if request == 0:
        return
    balance: uint256 = erc20.balanceOf[owner]
    if amount > balance:
        return  # erc20._transfer reverts
    left: uint256 = balance - amount
    if request & MASK_160 > left:
        self._requests[owner] = (request & ~MASK_160) | left


@internal
def _pull(sender: address, amount: uint256):
    """
    @dev Pull `amount` of the quote token from `sender`; a fee-on-transfer token reverts.
    """
    before: uint256 = staticcall _ASSET.balanceOf(self)
    assert extcall _ASSET.transferFrom(sender, self, amount, default_return_value=True), "pool: transfer failed"
    assert staticcall _ASSET.balanceOf(self) - before == amount, "pool: fee-on-transfer token"


@internal
def _pay(receiver: address, amount: uint256):
    assert extcall _ASSET.transfer(receiver, amount, default_return_value=True), "pool: transfer failed"


@internal
def _add_income(amount: uint256):
    """
    @dev Add `amount` (already received) to the vesting bucket. The merged bucket vests
         linearly until now + (unvested * remaining + amount * income_vesting) / (unvested +
         amount), rounded up (Yearn v3's weighted unlocking end).
    """
    state: uint256 = self._assets
    clock: uint256 = self._clock
    managed: uint256 = (state & MASK_128) + amount
    assert managed <= MASK_128, "pool: too many assets"
    unvested: uint256 = self._unvested(state >> 128, clock)
    end: uint256 = (clock >> 64) & MASK_64
    remaining: uint256 = 0
    if end > block.timestamp:
        remaining = end - block.timestamp
    locked: uint256 = unvested + amount
    span: uint256 = math._mul_div(1, unvested * remaining + amount * self.income_vesting, locked, True)
    if span == 0:
        locked = 0
    end = block.timestamp + span
    self._assets = managed | (locked << 128)
    self._clock = block.timestamp | (end << 64) | (clock >> 128 << 128)
    log IncomeAdded(amount=amount, unvested=locked, vesting_end=end)


@internal
def _take_loss(amount: uint256) -> uint256:
    """
    @dev Charge a loss of `amount` (<= managed assets) to the pool: first to unvested
         income, then to vested assets. Shares are not burned. Returns the part taken from
         unvested income.
    """
    state: uint256 = self._assets
    managed: uint256 = state & MASK_128
    assert amount <= managed, "pool: loss exceeds assets"
    clock: uint256 = self._clock
    unvested: uint256 = self._unvested(state >> 128, clock)
    from_unvested: uint256 = 0
    if unvested == 0:
        self._assets = (state & ~MASK_128) | (managed - amount)
    else:
        from_unvested = min(unvested, amount)
        self._assets = (managed - amount) | ((unvested - from_unvested) << 128)
        self._clock = (clock & ~MASK_64) | block.timestamp
    return from_unvested


@internal
def _set_paused(paused_: bool):
    assert self.paused != paused_, "pool: pause unchanged"
    self.paused = paused_
    log PauseSet(account=msg.sender, paused=paused_)


@internal
def _set_deposit_cap(cap: uint256):
    self.deposit_cap = cap
    log ParamSet(param="deposit_cap", value=cap)


@internal
def _set_redeem_delays(cooldown_: uint256, window_: uint256):
    assert cooldown_ <= MAX_DURATION, "pool: cooldown too long"
    assert window_ >= MIN_WINDOW and window_ <= MAX_DURATION, "pool: bad window"
    self.cooldown = cooldown_
    self.redeem_window = window_
    log ParamSet(param="cooldown", value=cooldown_)
    log ParamSet(param="redeem_window", value=window_)


@internal
def _set_income_vesting(period: uint256):
    assert period <= MAX_DURATION, "pool: vesting too long"
    self.income_vesting = period
    log ParamSet(param="income_vesting", value=period)
