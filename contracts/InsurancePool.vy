# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize gas
"""
@title InsurancePool
@notice The insurance pool of one segment. LPs deposit the quote token for ERC-4626 shares
        (pool_shares: internal accounting, vesting income, request -> cooldown -> window
        withdrawals). The segment earns fees and liquidation penalties through
        notify_income and pays the segment's bad debt through cover; what it cannot pay is
        drawn from the shared BackstopPool within that segment's cap. Every step of the loss
        waterfall is evented (Cover, and Draw on the backstop): nothing is written off silently.
@dev Invariant 6: assets per share only fall in a transaction that emits Cover (cover is the
     only path to pool_shares._take_loss). Invariant 9: a pool only ever pays its own
     segment's cover, and the backstop only pays through draw, capped per segment.
     The per-block cover state packs block number (64) | covered in that block (96) | limit
     (96) in one slot; limits >= 2**96 - 1 mean "no limit".
     JIT fairness: shares are bought at the entry price (managed assets, unvested income
     included: see pool_shares), and deposit/mint first have the vault sweep this segment's
     accrued fees and penalties (MarginVault.sweep_fees, permissionless), so income earned
     before a deposit is already in the pool, priced into the shares the newcomer buys, when
     the deposit is priced. A depositor therefore gains nothing from income earned or notified
     before it joined. previewDeposit/previewMint/maxMint price in the income the sweep would
     bring (pending_income), so they match what deposit/mint do in the same block.
     Reentrancy: the sweep calls back notify_income while deposit holds this contract's lock,
     so notify_income alone is @reentrant. It is safe as a reentry point because it only ever
     adds: it pulls `amount` (the caller's tokens) and books it as unvested income, reading
     all state fresh. Every other function either does its external calls after its own
     writes (cover, redeem, withdraw) or checks the exact balance change around its pull
     (_pull in deposit/mint/notify_income), so income landing inside that pull reverts it.
     notify_income still needs INCOME_ROLE (the vault), and the backstop it calls stays locked
     against reentry.
     Rebalancing (docs/pools.md): rebalance() is permissionless. Above target_size it sends
     the surplus — at most the income still vesting, so assets per share never fall (the
     surplus is income LPs had not yet earned) — to the backstop and the treasury by
     surplus_backstop_bps; below floor_size it tops itself up from the backstop within its
     member cap (at most the bad debt it paid since its last refill: `refillable`), while
     MarginVault.sweep_fees gives it all of its segment's fees, and notify_income forwards nothing to the backstop while below the floor.
     The stress flag `stressed` is refreshed by notify_income, deposit, mint, rebalance and
     set_floor_size (a cover or a withdrawal at the next of those: the keeper rebalances a pool
     left below its floor with bad debt to refill), and every flip emits Stress. cover leaves it
     alone so that the liquidation path pays for no extra slot.
"""

from ethereum.ercs import IERC20

from interfaces import IBackstopPool
from interfaces import IInsurancePool

implements: IInsurancePool

from snekmate.auth import access_control

import packing
import pool_shares

initializes: access_control
initializes: pool_shares

# every pool_shares function but deposit, mint, previewDeposit, previewMint and maxMint,
# which this pool defines itself (sweep first / price the pending sweep in), and but EIP-2612
# permit (with nonces, DOMAIN_SEPARATOR, eip712Domain): it does not fit under EIP-170 next to
# rebalancing, and LPs approve the pool's share token the usual way (BackstopPool keeps it)
exports: (
    access_control.__interface__,
    pool_shares.erc20.totalSupply,
    pool_shares.erc20.balanceOf,
    pool_shares.erc20.approve,
    pool_shares.erc20.allowance,
    pool_shares.erc20.name,
    pool_shares.erc20.symbol,
    pool_shares.erc20.decimals,
    pool_shares.transfer,
    pool_shares.transferFrom,
    pool_shares.totalAssets,
    pool_shares.convertToShares,
    pool_shares.convertToAssets,
    pool_shares.maxDeposit,
    pool_shares.maxWithdraw,
    pool_shares.maxRedeem,
    pool_shares.previewWithdraw,
    pool_shares.previewRedeem,
    pool_shares.withdraw,
    pool_shares.redeem,
    pool_shares.request_redeem,
    pool_shares.cancel_redeem,
    pool_shares.pending_request,
    pool_shares.assets_per_share,
    pool_shares.managed_assets,
    pool_shares.vested_income,
    pool_shares.unvested_income,
    pool_shares.vesting_end,
    pool_shares.DECIMALS_OFFSET,
    pool_shares.asset,
    pool_shares.paused,
    pool_shares.deposit_cap,
    pool_shares.cooldown,
    pool_shares.redeem_window,
    pool_shares.income_vesting,
)


# What the pool needs from the MarginVault: the permissionless sweep, and the views that say
# how much a sweep would bring (the same split as MarginVault.sweep_fees).
interface IFeeVault:
    def sweep_fees(segment: uint256) -> uint256: nonpayable
    def segment_pool(segment: uint256) -> address: view
    def segment_listing(segment: uint256) -> uint256: view
    def market_state(market: uint256) -> uint256: view
    def pool_fee_share_bps() -> uint256: view


# ---------------------------------------------------------------- constants

RISK_ADMIN_ROLE: public(constant(bytes32)) = keccak256("RISK_ADMIN_ROLE")
GUARDIAN_ROLE: public(constant(bytes32)) = keccak256("GUARDIAN_ROLE")
INCOME_ROLE: public(constant(bytes32)) = keccak256("INCOME_ROLE")
COVER_ROLE: public(constant(bytes32)) = keccak256("COVER_ROLE")

BPS: constant(uint256) = 10_000
DEFAULT_BACKSTOP_SHARE_BPS: constant(uint256) = 1_000
MASK_64: constant(uint256) = 2**64 - 1
MASK_96: constant(uint256) = 2**96 - 1
UNLIMITED: constant(uint256) = MASK_96


# ---------------------------------------------------------------- storage

segment: public(immutable(uint256))
vault: public(immutable(address))
backstop: public(immutable(IBackstopPool))
_QUOTE: immutable(IERC20)

target_size: public(uint256)
backstop_income_share_bps: public(uint256)
# surplus routing: the treasury and the backstop's share (bps; the rest to the treasury)
treasury: public(address)
surplus_backstop_bps: public(uint256)
# floor_size (low 128) | stressed (bit 255): managed assets were below the floor at the last
# refresh (Stress on each flip). The refillable bad debt (what cover paid and the backstop has not
# refilled: a top-up refills losses only, never withdrawals, else LPs who stay would be paid by the
# backstop for those who left) lives in the high 128 bits of pool_shares._clock, a slot cover
# already touches, saturating at 2**128 - 1.
_floor_state: uint256
# block number (low 64) | covered in that block (96, saturating) | max per block (high 96;
# MASK_96 = unlimited): one slot for the whole per-block limit
_cover_state: uint256


# ---------------------------------------------------------------- events

event IncomeNotified:
    amount: uint256
    to_backstop: uint256

event Cover:
    requested: uint256
    paid_by_pool: uint256
    paid_by_backstop: uint256
    unpaid: uint256

event Rebalanced:
    to_backstop: uint256
    to_treasury: uint256
    from_backstop: uint256
    assets: uint256

event Stress:
    stressed: bool
    assets: uint256
    floor: uint256
    target: uint256


# ---------------------------------------------------------------- constructor

@deploy
def __init__(
    asset_: IERC20,
    name_: String[25],
    symbol_: String[5],
    segment_: uint256,
    vault_: address,
    backstop_: IBackstopPool,
    deposit_cap_: uint256,
    target_size_: uint256,
):
    """
    @param asset_ The quote token (same as the vault's).
    @param name_ Share token name, e.g. "Backstop majors LP".
    @param symbol_ Share token symbol.
    @param segment_ The segment this pool insures.
    @param vault_ Gets INCOME_ROLE and COVER_ROLE if not zero.
    @param backstop_ The shared BackstopPool (same asset).
    @param deposit_cap_ Cap on totalAssets for deposits (max_value = none).
    @param target_size_ Size above which assets count as surplus (for rebalancing).
    """
    assert backstop_.address != empty(address), "pool: zero backstop"
    assert staticcall backstop_.asset() == asset_.address, "pool: backstop asset mismatch"
    access_control.__init__()
    pool_shares.__init__(asset_, name_, symbol_, "Backstop Insurance Pool")
    segment = segment_
    vault = vault_
    backstop = backstop_
    _QUOTE = asset_
    access_control._grant_role(RISK_ADMIN_ROLE, msg.sender)
    access_control._grant_role(GUARDIAN_ROLE, msg.sender)
    if vault_ != empty(address):
        access_control._grant_role(INCOME_ROLE, vault_)
        access_control._grant_role(COVER_ROLE, vault_)
    pool_shares._set_deposit_cap(deposit_cap_)
    self.target_size = target_size_
    self.backstop_income_share_bps = DEFAULT_BACKSTOP_SHARE_BPS
    # non-zero from the start, so the first cover does not pay for a fresh slot
    self._cover_state = block.number | (UNLIMITED << 160)


# ---------------------------------------------------------------- deposits (sweep first)

@external
def deposit(assets: uint256, receiver: address) -> uint256:
    """
    @notice Deposit `assets` of the quote token and mint shares to `receiver`. The vault first
            sweeps this segment's accrued fees into the pool, then the shares are priced at the
            entry price (managed assets, unvested income included), rounded down.
    @param assets Quote amount (the caller approved it).
    @param receiver Owner of the new shares.
    @return uint256 Shares minted.
    """
    self._sweep()
    shares: uint256 = pool_shares._deposit(assets, receiver)
    self._signal()
    return shares


@external
def mint(shares: uint256, receiver: address) -> uint256:
    """
    @notice Mint exactly `shares` to `receiver`, after the vault sweeps this segment's accrued
            fees into the pool; pulls their cost at the entry price, rounded up.
    @param shares Shares to mint.
    @param receiver Owner of the new shares.
    @return uint256 Assets pulled.
    """
    self._sweep()
    cost: uint256 = pool_shares._mint(shares, receiver)
    self._signal()
    return cost


@external
@view
def previewDeposit(assets: uint256) -> uint256:
    """
    @notice Shares a deposit of `assets` mints now, including the income its sweep brings in.
    @param assets Quote amount.
    @return uint256 Shares (rounded down).
    """
    return pool_shares._preview_deposit(assets, self._pending_income())


@external
@view
def previewMint(shares: uint256) -> uint256:
    """
    @notice Assets a mint of `shares` costs now, including the income its sweep brings in.
    @param shares Shares to mint.
    @return uint256 Quote amount (rounded up).
    """
    return pool_shares._preview_mint(shares, self._pending_income())


@external
@view
def maxMint(receiver: address) -> uint256:
    """
    @notice Most shares a mint can create now (0 while paused or at the cap).
    @param receiver Ignored (no per-receiver limit).
    @return uint256 Shares.
    """
    return pool_shares._max_mint(self._pending_income())


@external
@view
def pending_income() -> uint256:
    """
    @notice Income the vault's next sweep of this segment would add to this pool (its fee
            share plus penalties, minus the part forwarded to the backstop); 0 without a vault.
    @return uint256 Quote units.
    """
    return self._pending_income()


# ---------------------------------------------------------------- income and cover

@external
@reentrant
def notify_income(amount: uint256):
    """
    @notice Receive segment income (fees, liquidation penalties): pulls `amount` from the
            caller, forwards backstop_income_share_bps of it to the backstop (nothing while
            the pool is below its floor), and vests the rest linearly over income_vesting.
    @dev INCOME_ROLE. The caller approves `amount` first. Fee-on-transfer tokens revert.
         Reentrant so that the vault's sweep inside deposit/mint can call it (see the
         contract's @dev for why this reentry point is safe).
    @param amount Quote amount.
    """
    access_control._check_role(INCOME_ROLE, msg.sender)
    assert amount > 0, "pool: zero amount"
    pool_shares._pull(msg.sender, amount)
    to_backstop: uint256 = 0
    if not self._below_floor():
        to_backstop = amount * self.backstop_income_share_bps // BPS
    if to_backstop > 0:
        assert extcall _QUOTE.approve(backstop.address, to_backstop, default_return_value=True), "pool: approve failed"
        extcall backstop.notify_income(to_backstop)
    if amount > to_backstop:
        pool_shares._add_income(amount - to_backstop)
    log IncomeNotified(amount=amount, to_backstop=to_backstop)
    self._signal()


@external
def cover(amount: uint256) -> uint256:
    """
    @notice Pay `amount` of the segment's bad debt to the caller: first from this pool (up to
            its assets and the per-block limit), then from the backstop within the segment's
            draw cap. The caller should check its balance rose by the returned amount.
    @dev COVER_ROLE (vault, liquidation engine). Emits Cover with every part of the split.
    @param amount The deficit, in quote units.
    @return uint256 Total paid to the caller (pool + backstop); amount - paid is unpaid.
    """
    access_control._check_role(COVER_ROLE, msg.sender)
    assert amount > 0, "pool: zero amount"
    paid: uint256 = min(amount, self._capacity())
    if paid > 0:
        state: uint256 = self._cover_state
        covered: uint256 = paid
        if state & MASK_64 == block.number:
            covered = min(covered + ((state >> 64) & MASK_96), MASK_96)
        self._cover_state = block.number | (covered << 64) | (state >> 160 << 160)
        pool_shares._take_loss(paid)
        pool_shares._pay(msg.sender, paid)
        clock: uint256 = pool_shares._clock
        refill: uint256 = min((clock >> 128) + paid, pool_shares.MASK_128)
        pool_shares._clock = (clock & pool_shares.MASK_128) | (refill << 128)
    from_backstop: uint256 = 0
    if paid < amount and staticcall backstop.member_cap_bps(self) > 0:
        from_backstop = extcall backstop.draw(amount - paid, msg.sender)
        assert from_backstop <= amount - paid, "pool: backstop overpaid"
    log Cover(requested=amount, paid_by_pool=paid, paid_by_backstop=from_backstop, unpaid=amount - paid - from_backstop)
    return paid + from_backstop


@external
def rebalance() -> uint256:
    """
    @notice Move this pool toward its band: above target_size send the surplus (at most the
            income still vesting) to the backstop and the treasury by surplus_backstop_bps;
            below floor_size draw the shortfall from the backstop within this member's cap, at
            most the bad debt this pool paid since its last refill (`refillable`).
            Permissionless (the keeper runs it); a no-op when inside the band.
    @dev Emits Rebalanced when anything moves (TopUp on the backstop too), and Stress when
         the below-floor flag flips. Surplus leaves through _take_loss, which charges
         unvested income first, so assets per share do not fall.
    @return uint256 Quote units moved (sent out plus received).
    """
    managed: uint256 = pool_shares._assets & pool_shares.MASK_128
    target: uint256 = self.target_size
    floor_: uint256 = self._floor_state & pool_shares.MASK_128
    to_backstop: uint256 = 0
    to_treasury: uint256 = 0
    received: uint256 = 0
    if target > 0 and managed > target:
        out: uint256 = min(managed - target, pool_shares._unvested(pool_shares._assets >> 128, pool_shares._clock))
        if out > 0:
            pool_shares._take_loss(out)
            to_backstop = out
            receiver: address = self.treasury
            if receiver != empty(address):
                to_backstop = out * self.surplus_backstop_bps // BPS
                to_treasury = out - to_backstop
                if to_treasury > 0:
                    pool_shares._pay(receiver, to_treasury)
            if to_backstop > 0:
                assert extcall _QUOTE.approve(backstop.address, to_backstop, default_return_value=True), "pool: approve failed"
                extcall backstop.notify_income(to_backstop)
    elif managed < floor_ and staticcall backstop.member_cap_bps(self) > 0:
        # refill at most the bad debt paid since the last refill, not what LPs withdrew
        wanted: uint256 = min(floor_ - managed, pool_shares._clock >> 128)
        if wanted > 0:
            before: uint256 = staticcall _QUOTE.balanceOf(self)
            received = extcall backstop.top_up(wanted)
            assert received <= wanted and staticcall _QUOTE.balanceOf(self) - before == received, "pool: bad top-up"
            if received > 0:
                pool_shares._clock -= received << 128
                pool_shares._add_income(received)
    moved: uint256 = to_backstop + to_treasury + received
    if moved > 0:
        log Rebalanced(to_backstop=to_backstop, to_treasury=to_treasury, from_backstop=received, assets=pool_shares._assets & pool_shares.MASK_128)
    self._signal()
    return moved


# ---------------------------------------------------------------- admin

@external
def set_deposit_cap(cap: uint256):
    """
    @notice Cap on totalAssets for new deposits (max_value(uint256) = no cap).
    @param cap The cap, in quote units.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    pool_shares._set_deposit_cap(cap)


@external
def set_target_size(size: uint256):
    """
    @notice The pool size above which assets are surplus (see surplus()).
    @param size Quote units.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    assert size == 0 or size >= self._floor_state & pool_shares.MASK_128, "pool: floor > target"
    self.target_size = size
    log pool_shares.ParamSet(param="target_size", value=size)


@external
def set_floor_size(size: uint256):
    """
    @notice The pool size below which it keeps all its income and tops up from the backstop.
    @param size Quote units (at most target_size when a target is set).
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    target: uint256 = self.target_size
    assert target == 0 or size <= target, "pool: floor > target"
    assert size <= pool_shares.MASK_128, "pool: floor too large"
    self._floor_state = (self._floor_state >> 255 << 255) | size
    log pool_shares.ParamSet(param="floor_size", value=size)
    self._signal()


@external
def set_surplus_routing(treasury_: address, backstop_bps: uint256):
    """
    @notice Where rebalance sends the surplus: backstop_bps to the backstop, the rest to
            `treasury_` (zero treasury = all to the backstop).
    @param treasury_ The treasury (zero allowed).
    @param backstop_bps The backstop's share, at most 10,000.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    assert backstop_bps <= BPS, "pool: bps > 10000"
    self.treasury = treasury_
    self.surplus_backstop_bps = backstop_bps
    log pool_shares.ParamSet(param="surplus_backstop_bps", value=backstop_bps)


@external
def set_redeem_delays(cooldown_: uint256, window_: uint256):
    """
    @notice Cooldown before a redeem request unlocks and the window it stays open. Applies to
            new requests only.
    @param cooldown_ Seconds from a request to its unlock.
    @param window_ Seconds the request stays redeemable after the unlock.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    pool_shares._set_redeem_delays(cooldown_, window_)


@external
def set_income_vesting(period: uint256):
    """
    @notice Period over which new income vests (0 = at once; existing buckets keep their end).
    @param period Seconds.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    pool_shares._set_income_vesting(period)


@external
def set_backstop_income_share(bps: uint256):
    """
    @notice Share of income forwarded to the backstop, in bps (0 allowed).
    @param bps At most 10,000.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    assert bps <= BPS, "pool: bps > 10000"
    self.backstop_income_share_bps = bps
    log pool_shares.ParamSet(param="backstop_income_share_bps", value=bps)


@external
def set_max_cover_per_block(amount: uint256):
    """
    @notice Most this pool pays out through cover in one block (quote units); the rest of a
            deficit goes to the backstop. Values >= 2**96 - 1 mean no limit.
    @param amount Quote units per block.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    limit: uint256 = min(amount, UNLIMITED)
    self._cover_state = (self._cover_state & (2**160 - 1)) | (limit << 160)
    log pool_shares.ParamSet(param="max_cover_per_block", value=amount)


@external
def pause():
    """
    @notice Stop deposits and mints (guardian). Redeems, income and cover keep working.
    """
    access_control._check_role(GUARDIAN_ROLE, msg.sender)
    pool_shares._set_paused(True)


@external
def unpause():
    """
    @notice Resume deposits and mints (admin only).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    pool_shares._set_paused(False)


# ---------------------------------------------------------------- views

@external
@view
def surplus() -> int256:
    """
    @notice totalAssets - target_size (negative when under target), for rebalancing.
    @return int256 Quote units.
    """
    return convert(pool_shares._total_assets(), int256) - convert(self.target_size, int256)


@external
@view
def max_cover_per_block() -> uint256:
    """
    @notice Most this pool pays through cover in one block (max_value(uint256) = no limit).
    @return uint256 Quote units.
    """
    limit: uint256 = self._cover_state >> 160
    if limit == UNLIMITED:
        return max_value(uint256)
    return limit


@external
@view
def cover_capacity() -> uint256:
    """
    @notice What this pool alone could still pay through cover in the current block.
    @return uint256 Quote units.
    """
    return self._capacity()


@external
@view
def cover_reach() -> uint256:
    """
    @notice The most this pool plus the backstop could pay for this segment, ignoring the
            per-block cover limit: managed assets (none if the limit is 0) + what the backstop
            would still let this segment draw (0 if not registered there). The limit only
            spreads the pool's payments over blocks; a deficit is uncovered (ADL may start)
            only beyond this.
    @return uint256 Quote units.
    """
    reach: uint256 = 0
    # a per-block limit of 0 means this pool pays nothing in any block
    if self._cover_state >> 160 != 0:
        reach = pool_shares._assets & pool_shares.MASK_128
    reach += staticcall backstop.draw_capacity(self)
    return reach


@external
@view
def max_cover() -> uint256:
    """
    @notice The most a cover in the current block could pay: this pool's capacity plus what
            the backstop would still let this segment draw (0 if not registered there).
            Bounded by the per-block limit: use cover_reach to decide whether a deficit is
            uncovered.
    @return uint256 Quote units.
    """
    capacity: uint256 = self._capacity()
    capacity += staticcall backstop.draw_capacity(self)
    return capacity


@external
@view
def floor_size() -> uint256:
    """
    @notice The pool size below which it keeps all its segment's fees and the backstop refills
            the bad debt it paid (quote units; 0 = no floor).
    @return uint256 Quote units.
    """
    return self._floor_state & pool_shares.MASK_128


@external
@view
def refillable() -> uint256:
    """
    @notice Bad debt this pool paid through cover that the backstop has not refilled yet: the
            most a top-up below the floor may bring (withdrawals are never refilled).
    @return uint256 Quote units.
    """
    return pool_shares._clock >> 128


@external
@view
def stressed() -> bool:
    """
    @notice The stress flag: the pool was below its floor at its last refresh (income, deposit,
            mint, rebalance, set_floor_size; after a cover, the keeper's rebalance); every flip
            emitted Stress.
    @return bool The flag.
    """
    return self._floor_state >> 255 == 1


@external
@view
@reentrant
def below_floor() -> bool:
    """
    @notice Whether managed assets are below floor_size now: the pool then keeps all of its
            segment's fees (MarginVault.sweep_fees) and forwards nothing to the backstop.
    @dev Reentrant: the vault's sweep inside deposit/mint reads it while this pool holds its
         lock (before the deposit touches any state), as it calls notify_income.
    @return bool Below the floor.
    """
    return self._below_floor()


# ---------------------------------------------------------------- internal

@internal
@view
def _below_floor() -> bool:
    return pool_shares._assets & pool_shares.MASK_128 < self._floor_state & pool_shares.MASK_128


@internal
def _signal():
    """
    @dev Refresh the stress flag; emit Stress when it flips (below the floor / recovered).
    """
    state_: uint256 = self._floor_state
    floor_: uint256 = state_ & pool_shares.MASK_128
    managed: uint256 = pool_shares._assets & pool_shares.MASK_128
    below: bool = managed < floor_
    if below != (state_ >> 255 == 1):
        self._floor_state = state_ ^ (1 << 255)
        log Stress(stressed=below, assets=managed, floor=floor_, target=self.target_size)


@internal
def _sweep():
    """
    @dev Bring the segment's income accrued at the vault into the pool before an entry is
         priced. Skipped when there is no vault contract (vault unset or an EOA stands in for
         it): there is nothing to sweep then. A failing sweep reverts the deposit: swallowing
         it would let a depositor choose the gas that makes it fail and buy in before the fees.
    """
    if vault.is_contract:
        extcall IFeeVault(vault).sweep_fees(segment)


@internal
@view
def _pending_income() -> uint256:
    """
    @dev What _sweep would add to this pool's managed assets now: the split of
         MarginVault.sweep_fees (pool_fee_share_bps of the fees + all penalties, if this pool is
         the segment's pool), then minus the backstop's share, as notify_income does; below the
         floor all fees and penalties, none forwarded.
    """
    if not vault.is_contract:
        return 0
    source: IFeeVault = IFeeVault(vault)
    if staticcall source.segment_pool(segment) != self:
        return 0
    fees: uint256 = 0
    to_pool: uint256 = 0
    listed: uint256 = staticcall source.segment_listing(segment)
    for i: uint256 in range(packing.MAX_MARKETS_PER_SEGMENT):
        if i >= packing._market_count(listed):
            break
        open_interest: uint256 = 0
        accrued: uint256 = 0
        penalties: uint256 = 0
        open_interest, accrued, penalties = packing._unpack_market_state(
            staticcall source.market_state(packing._market_at(listed, i))
        )
        fees += accrued
        to_pool += penalties
    if self._below_floor():
        # below the floor the pool keeps every fee and forwards nothing (sweep_fees, notify_income)
        return to_pool + fees
    to_pool += fees * staticcall source.pool_fee_share_bps() // BPS
    return to_pool - to_pool * self.backstop_income_share_bps // BPS


@internal
@view
def _capacity() -> uint256:
    state: uint256 = self._cover_state
    room: uint256 = state >> 160
    if room == UNLIMITED:
        room = max_value(uint256)
    elif state & MASK_64 == block.number:
        covered: uint256 = (state >> 64) & MASK_96
        room = room - covered if room > covered else 0
    return min(room, pool_shares._assets & pool_shares.MASK_128)
