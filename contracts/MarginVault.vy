# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize codesize
"""
@title MarginVault
@notice Collateral, perpetual positions and signed-order settlement of Backstop.
        Accounts are (owner, segment): the collateral and positions of one segment are
        cross-margined together and isolated from every other segment. Traders move risk
        by filling each other's EIP-712 signed orders on chain; equity, initial margin (IM)
        and maintenance margin (MM) are marked at the oracle price.
@dev Amounts of the quote token are in its own decimals; sizes and prices are 18-decimal
     fixed point. Storage is packed so that a fill writes few slots:
       account  (owner, segment) : collateral int128 (low) | open-market mask uint128 (high)
       position (owner, market)  : size int128 (low)       | entry notional int128 (high)
       market config             : segment u8 | exists u8 | IM u64 | MM u64 | taker fee u16 |
                                   maker fee u16 | price band u16 | max open interest u64
       market state              : open interest u96 | accrued fees u80 | accrued liquidation
                                   penalties u80 (penalties are all pool income)
     (layouts and their round-trip tests: contracts/packing.vy). Views for off-chain readers
     (equity, margin requirements, liquidatable, batched health, unpacked words) live in
     VaultLens; parameters are validated and packed by the Configurator, which holds
     RISK_ADMIN_ROLE and calls the few raw setters below.
     Conservation (docs/design.md invariant 1), exact to the wei:
       quote.balanceOf(vault) == sum(collateral) + sum(accrued fees and penalties)
                                 - sum(entry notional)
     because every fill moves the same signed trade cost to both sides.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

from interfaces import IMarginVault
from interfaces import IOracleAdapter
from interfaces import IInsurancePool

implements: IMarginVault

import constants
import packing

from snekmate.auth import access_control
from snekmate.utils import pausable
from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712

initializes: access_control
initializes: pausable
initializes: eip712

# eip712Domain (EIP-5267) is not exported: the contract sits at the EIP-170 size limit and
# the domain is fixed (name "Backstop", version "1", chain id, this address); `order_hash`
# returns the digest a maker signs.
# Only the access-control entry points governance uses are exported (the whole interface costs
# ~500 B more): role checks, grants, revokes and renounces.
exports: (
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    pausable.paused,
)


# ---------------------------------------------------------------- constants

GUARDIAN_ROLE: public(constant(bytes32)) = keccak256("GUARDIAN_ROLE")
RISK_ADMIN_ROLE: public(constant(bytes32)) = keccak256("RISK_ADMIN_ROLE")
ENGINE_ROLE: public(constant(bytes32)) = keccak256("ENGINE_ROLE")

ORDER_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Order(address maker,uint256 market,int256 size,uint256 price,uint256 nonce,uint256 expiry,bool reduce_only)"
)
EIP712_NAME: constant(String[50]) = "Backstop"
EIP712_VERSION: constant(String[20]) = "1"

_MAX_MARKETS: constant(uint256) = 128  # one bit each in the account's open-market mask
_MAX_QUOTE_DECIMALS: constant(uint256) = 18
_MAX_POSITION: constant(uint256) = constants.MASK_64 * constants.WAD  # keeps packed sizes far from int128

_CANCELLED: constant(uint256) = max_value(uint256)

# Funding (docs/margin.md): the premium is the rate paid per period; it fades linearly to zero
# over one period after the market's last fill, and a fill's own premium weighs in by the time
# since the previous fill, up to one window (a time-weighted average of fill premiums).
_FUNDING_PERIOD: constant(uint256) = 8 * 3600
_PREMIUM_WINDOW: constant(uint256) = 3600
# size-aware margin: a knee is counted in units of 10,000 whole quote tokens
_KNEE_TOKENS: constant(uint256) = 10_000


# ---------------------------------------------------------------- types

struct Order:
    maker: address
    market: uint256
    size: int256
    price: uint256
    nonce: uint256
    expiry: uint256
    reduce_only: bool


struct TradeResult:
    old_size: int256
    new_size: int256
    realized: int256
    fee: uint256
    position: uint256  # the position word written (the health check after the trade reads it from here)
    account: uint256  # the account word written


# ---------------------------------------------------------------- storage

quote: public(immutable(IERC20))
quote_decimals: public(immutable(uint256))
# notional (quote units) = size (1e18) * price (1e18) // _NOTIONAL_SCALE
_NOTIONAL_SCALE: immutable(uint256)
# quote units of one unit of a market's size knee
_KNEE_UNIT: immutable(uint256)

oracle: public(immutable(IOracleAdapter))
treasury: public(address)
# share of trading fees that goes to the segment's insurance pool (the rest: treasury)
pool_fee_share_bps: public(uint256)
segment_pool: public(HashMap[uint256, IInsurancePool])

segment_count: public(uint256)
market_count: public(uint256)

# segment => count (low 8 bits) | market ids, 8 bits each
_segment_markets: HashMap[uint256, uint256]
_market_config: HashMap[uint256, uint256]
_market_state: HashMap[uint256, uint256]
# market => funding index (quote price units per unit of size) | premium | last update (packing.vy)
_market_funding: HashMap[uint256, uint256]

_accounts: HashMap[address, HashMap[uint256, uint256]]
_positions: HashMap[address, HashMap[uint256, uint256]]

# order digest => base size filled (_CANCELLED once cancelled)
filled: public(HashMap[bytes32, uint256])

# segment => quote tokens held for the segment (low 192 bits) | withdrawals gated until (high 64).
# Per segment, exactly: cash == sum(collateral) + accrued fees and penalties - sum(entry notional),
# so the token balance is split between segments and a withdrawal can only ever take its own
# segment's tokens: no loss in one segment can make another segment's withdrawal fail.
_segment_state: HashMap[uint256, uint256]


# ---------------------------------------------------------------- events

event Deposit:
    owner: indexed(address)
    segment: indexed(uint256)
    amount: uint256

event Withdraw:
    owner: indexed(address)
    segment: indexed(uint256)
    amount: uint256

event Fill:
    order_hash: indexed(bytes32)
    maker: indexed(address)
    taker: indexed(address)
    market: uint256
    maker_delta: int256
    price: uint256
    maker_fee: uint256
    taker_fee: uint256
    maker_realized: int256
    taker_realized: int256
    funding_index: int256

event OrderCancelled:
    order_hash: indexed(bytes32)
    maker: indexed(address)

event FeesSwept:
    segment: indexed(uint256)
    to_pool: uint256
    to_treasury: uint256

event PositionTransferred:
    owner: indexed(address)
    receiver: indexed(address)
    market: indexed(uint256)
    owner_delta: int256
    price: uint256
    penalty: uint256
    keeper_fee: uint256
    owner_realized: int256
    funding_index: int256

event WithdrawalsGated:
    segment: indexed(uint256)
    until: uint256

event BadDebtCovered:
    owner: indexed(address)
    segment: indexed(uint256)
    deficit: uint256
    paid: uint256
    unpaid: uint256


# ---------------------------------------------------------------- constructor

@deploy
def __init__(quote_: IERC20, oracle_: IOracleAdapter, treasury_: address):
    """
    @param quote_ The quote (collateral) ERC-20; at most 18 decimals.
    @param oracle_ The oracle adapter pricing every market.
    @param treasury_ Receiver of the treasury's share of fees.
    """
    access_control.__init__()
    pausable.__init__()
    eip712.__init__(EIP712_NAME, EIP712_VERSION)
    decimals: uint256 = convert(staticcall IERC20Detailed(quote_.address).decimals(), uint256)
    assert decimals <= _MAX_QUOTE_DECIMALS, "vault: quote decimals > 18"
    assert treasury_ != empty(address), "vault: zero treasury"
    quote = quote_
    quote_decimals = decimals
    _NOTIONAL_SCALE = 10 ** (36 - decimals)
    _KNEE_UNIT = _KNEE_TOKENS * 10**decimals
    oracle = oracle_
    self.treasury = treasury_
    self.pool_fee_share_bps = constants.BPS // 2
    # RISK_ADMIN_ROLE goes to the Configurator only (its raw setters trust their caller)
    access_control._grant_role(GUARDIAN_ROLE, msg.sender)


# ---------------------------------------------------------------- admin

@external
def add_segment() -> uint256:
    """
    @notice Configurator only: open the next segment (asset class).
    @return uint256 The new segment id.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    segment: uint256 = self.segment_count
    self.segment_count = segment + 1
    return segment


@external
def set_market_config(market: uint256, config: uint256):
    """
    @notice Configurator only: write the packed config word of `market`; `market_count`
            lists a new market in the segment of its word. The Configurator validated and
            packed the word (layout in packing.vy) and emits the decoded event.
    @param market An existing market id, or `market_count` to list a new market.
    @param config The packed config word.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    # a listed market's word is rewritten in place (RiskParams reads it first: a warm slot),
    # without reading market_count; only listing a new market needs the count
    listed: bool = packing._is_listed(self._market_config[market])
    count: uint256 = 0
    if not listed:
        count = self.market_count
    # one revert site (each costs ~100 B of code)
    assert packing._is_listed(config) and (listed or (market == count and market < _MAX_MARKETS)), (
        "vault: bad market config"
    )
    if not listed:
        segment: uint256 = config & constants.MASK_8
        self._segment_markets[segment] = packing._append_market(self._segment_markets[segment], market)
        self.market_count = count + 1
    self._market_config[market] = config


@external
def set_segment_pool(segment: uint256, pool: address):
    """
    @notice Configurator only: the insurance pool that earns the fees and covers the deficits
            of `segment`.
    @param segment The segment.
    @param pool The pool (holding the quote token; checked by the Configurator).
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    self.segment_pool[segment] = IInsurancePool(pool)


@external
def set_fee_routing(treasury_: address, pool_fee_share_bps_: uint256):
    """
    @notice Configurator only: the receiver of the treasury's share of fees and the share
            (bps) of trading fees paid to segment pools.
    @param treasury_ The treasury.
    @param pool_fee_share_bps_ The pools' share of trading fees, bps.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    self.treasury = treasury_
    self.pool_fee_share_bps = pool_fee_share_bps_


@external
def pause():
    """
    @notice Reduce-only mode (guardian only): withdrawals and every fill that is not a pure
            reduction of both sides stop; deposits, reducing fills, cancels and liquidations
            go on, so nobody is liquidated without a way to add margin or reduce risk.
    """
    access_control._check_role(GUARDIAN_ROLE, msg.sender)
    pausable._pause()


@external
def unpause():
    """
    @notice Resume normal operation (admin only).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    pausable._unpause()


# ---------------------------------------------------------------- collateral

@external
def deposit(segment: uint256, amount: uint256):
    """
    @notice Add `amount` of the quote token to the caller's account in `segment` (also while
            the vault is paused).
    @dev The token is pulled with a balance-delta check: a fee-on-transfer token reverts.
    @param segment The segment of the account.
    @param amount Quote token amount in its own decimals.
    """
    # deposits only lower risk: allowed while paused (reduce-only mode)
    self._check_amount(amount)
    self._check_segment(segment)
    before: uint256 = staticcall quote.balanceOf(self)
    self._check_transfer(extcall quote.transferFrom(msg.sender, self, amount, default_return_value=True))
    assert staticcall quote.balanceOf(self) - before == amount, "vault: fee-on-transfer token"
    account: uint256 = self._accounts[msg.sender][segment]
    self._accounts[msg.sender][segment] = packing._with_collateral(account, packing._lo(account) + convert(amount, int256))
    self._add_cash(segment, amount)
    log Deposit(owner=msg.sender, segment=segment, amount=amount)


@external
def withdraw(segment: uint256, amount: uint256):
    """
    @notice Withdraw `amount` of collateral. Only realized collateral can leave, and the
            account must still meet initial margin afterwards with min(collateral, equity):
            unrealized profit never backs a withdrawal.
    @param segment The segment of the account.
    @param amount Quote token amount in its own decimals.
    """
    pausable._require_not_paused()
    self._check_amount(amount)
    self._check_segment(segment)
    state: uint256 = self._segment_state[segment]
    # dYdX v4's rule: while a keeper has seen a deficit the pools cannot pay, nobody in the
    # segment withdraws (its realized profits may be what the deficit is owed from)
    assert block.timestamp >= state >> packing.SEGMENT_GATE, "vault: withdrawals gated"
    account: uint256 = self._accounts[msg.sender][segment]
    collateral: int256 = packing._lo(account)
    assert collateral >= 0 and amount <= convert(collateral, uint256), "vault: insufficient collateral"
    account = packing._with_collateral(account, collateral - convert(amount, int256))
    self._accounts[msg.sender][segment] = account
    if account >> 128 != 0:
        # strict: a market without a fresh price blocks the withdrawal, never values it
        health: IMarginVault.AccountHealth = self._health(
            msg.sender, segment, account, max_value(uint256), 0, 0, 0, 0, True
        )
        assert self._free_margin(health) >= 0, "vault: below initial margin"
    # the segment's own tokens only: a loss elsewhere can never be paid with them
    self._take_cash(segment, state, amount)
    self._send(msg.sender, amount)
    log Withdraw(owner=msg.sender, segment=segment, amount=amount)


# ---------------------------------------------------------------- orders

@external
def fill(order: Order, signature: Bytes[65], amount: uint256):
    """
    @notice Fill `amount` (base size) of a maker's signed order; the caller is the taker
            and takes the opposite side at the order's price.
    @dev While the vault is paused only fills that reduce both sides go through.
         Both accounts must meet IM afterwards unless the fill only reduces that account's
         position and does not lower its equity/MM ratio.
    @param order The maker's order (size > 0 buys, size < 0 sells).
    @param signature The maker's EIP-712 signature, r || s || v.
    @param amount Base size to fill, 18 decimals.
    """
    paused: bool = pausable.paused
    self._check_amount(amount)
    # zero, or the one size whose absolute value does not fit int256 (one revert site: ~100 B of code)
    assert order.size != 0 and order.size != min_value(int256), "vault: bad order size"
    assert block.timestamp <= order.expiry, "vault: order expired"
    self._check_distinct(order.maker, msg.sender)
    config: uint256 = self._config(order.market)

    digest: bytes32 = self._order_digest(order)
    done: uint256 = self._live_fill(digest)
    # done <= |size| always holds, so this cannot overflow
    assert amount <= convert(abs(order.size), uint256) - done, "vault: overfill"
    # no market's cap can exceed this: it keeps packed sizes far from int128 overflow
    self._check_open_interest(amount <= _MAX_POSITION)
    # snekmate returns the zero address for a malformed signature: never a valid maker
    signer: address = ecdsa._recover_sig(digest, signature)
    assert signer == order.maker and signer != empty(address), "vault: bad signature"
    self.filled[digest] = done + amount

    mark: uint256 = staticcall oracle.price(order.market)
    band: uint256 = (config >> packing.CONFIG_BAND) & constants.MASK_16
    deviation: uint256 = order.price - mark if order.price > mark else mark - order.price
    assert deviation <= band * mark // constants.BPS, "vault: price outside band"

    cost: uint256 = amount * order.price // _NOTIONAL_SCALE
    assert cost > 0, "vault: dust fill"
    maker_delta: int256 = convert(amount, int256)
    signed_value: int256 = convert(cost, int256)
    if order.size < 0:
        maker_delta = -maker_delta
        signed_value = -signed_value
    segment: uint256 = config & constants.MASK_8

    # fees round up: never in the trader's favour
    maker_fee: uint256 = (cost * ((config >> packing.CONFIG_MAKER_FEE) & constants.MASK_16) + constants.BPS - 1) // constants.BPS
    taker_fee: uint256 = (cost * ((config >> packing.CONFIG_TAKER_FEE) & constants.MASK_16) + constants.BPS - 1) // constants.BPS
    # both sides join the market's funding index at its value now (folded into their cost
    # basis); truncation is odd-symmetric, so what one side is charged the other is credited
    index: int256 = self._settle_funding(order.market, config, order.price, mark)
    signed_value -= maker_delta * index // convert(_NOTIONAL_SCALE, int256)
    maker: TradeResult = self._trade(order.maker, segment, order.market, maker_delta, signed_value, maker_fee)
    if order.reduce_only:
        assert self._reduces(maker, maker_delta), "vault: not reduce-only"
    taker: TradeResult = self._trade(msg.sender, segment, order.market, -maker_delta, -signed_value, taker_fee)

    # reduce-only mode while paused: both sides may only reduce
    assert not paused or (self._reduces(maker, maker_delta) and self._reduces(taker, -maker_delta)), (
        "vault: paused, reduce-only"
    )
    self._update_market_state(order.market, config, maker, taker, maker_fee + taker_fee, 0)
    self._check_after_trade(order.maker, segment, order.market, mark, index, config, maker, maker_delta, signed_value)
    self._check_after_trade(msg.sender, segment, order.market, mark, index, config, taker, -maker_delta, -signed_value)

    log Fill(
        order_hash=digest,
        maker=order.maker,
        taker=msg.sender,
        market=order.market,
        maker_delta=maker_delta,
        price=order.price,
        maker_fee=maker_fee,
        taker_fee=taker_fee,
        maker_realized=maker.realized,
        taker_realized=taker.realized,
        funding_index=index,
    )


@external
def cancel(order: Order):
    """
    @notice Cancel the caller's own order; its unfilled part can never be filled.
    @param order The order as signed.
    """
    assert order.maker == msg.sender, "vault: not maker"
    digest: bytes32 = self._order_digest(order)
    self._live_fill(digest)
    self.filled[digest] = _CANCELLED
    log OrderCancelled(order_hash=digest, maker=msg.sender)


# ---------------------------------------------------------------- fees

@external
def sweep_fees(segment: uint256) -> uint256:
    """
    @notice Pay out what the markets of `segment` accrued: `pool_fee_share_bps` of trading
            fees (all of them while the pool is below its floor) plus all liquidation
            penalties to the segment's insurance pool (as vesting income), the rest of the
            fees to the treasury. Without a pool, fees all go to
            the treasury and penalties wait for the pool.
    @param segment The segment whose fees are swept.
    @return uint256 The total amount paid out.
    """
    self._check_segment(segment)
    pool: IInsurancePool = self.segment_pool[segment]
    has_pool: bool = pool.address != empty(address)
    # without a pool, penalties stay in the market state until one is set
    keep: uint256 = ~(constants.MASK_80 << packing.STATE_FEES)
    if has_pool:
        keep = constants.MASK_96
    fees: uint256 = 0
    penalties: uint256 = 0
    listed: uint256 = self._segment_markets[segment]
    for i: uint256 in range(packing.MAX_MARKETS_PER_SEGMENT):
        if i >= listed & constants.MASK_8:
            break
        market: uint256 = (listed >> (8 + 8 * i)) & constants.MASK_8
        state: uint256 = self._market_state[market]
        fees += (state >> packing.STATE_FEES) & constants.MASK_80
        penalties += state >> packing.STATE_PENALTIES
        self._market_state[market] = state & keep

    fees_to_pool: uint256 = 0
    if has_pool:
        fees_to_pool = fees * self.pool_fee_share_bps // constants.BPS
        # a pool below its floor keeps every fee until it is restored (docs/pools.md)
        if staticcall pool.below_floor():
            fees_to_pool = fees
    else:
        penalties = 0
    to_treasury: uint256 = fees - fees_to_pool
    to_pool: uint256 = fees_to_pool + penalties
    # fees and penalties are part of the segment's cash until they leave here
    state: uint256 = self._segment_state[segment]
    self._take_cash(segment, state, to_pool + to_treasury)
    if to_treasury > 0:
        self._send(self.treasury, to_treasury)
    if to_pool > 0:
        self._check_transfer(extcall quote.approve(pool.address, to_pool, default_return_value=True))
        extcall pool.notify_income(to_pool)
    log FeesSwept(segment=segment, to_pool=to_pool, to_treasury=to_treasury)
    return to_pool + to_treasury


# ---------------------------------------------------------------- liquidation hooks

@external
def transfer_position(
    owner: address,
    receiver: address,
    market_id: uint256,
    amount: uint256,
    price: uint256,
    penalty: uint256,
    keeper_fee: uint256,
    check_receiver: bool,
    mark: uint256,
) -> IMarginVault.AccountHealth:
    """
    @notice Liquidation engine only: move `amount` (base size) of owner's position in
            `market_id` to `receiver` at `price`, charge `penalty` (to the segment pool) and
            `keeper_fee` (to the receiver) from the owner's collateral, which may go
            negative (bad debt, settled by `cover_bad_debt`).
    @param check_receiver Whether the receiver must meet IM afterwards (liquidators must;
           auto-deleveraged counterparties only reduce).
    @param mark The oracle price the engine read for `market_id` in this transaction.
    @return IMarginVault.AccountHealth The owner's health after the transfer.
    """
    access_control._check_role(ENGINE_ROLE, msg.sender)
    # not paused here: owners can add margin and reduce while paused, so liquidation goes on
    self._check_amount(amount)
    self._check_distinct(owner, receiver)
    config: uint256 = self._config(market_id)
    segment: uint256 = config & constants.MASK_8
    size: int256 = packing._lo(self._positions[owner][market_id])
    assert size != 0, "vault: no position"
    assert amount <= convert(abs(size), uint256), "vault: amount exceeds position"

    cost: uint256 = amount * price // _NOTIONAL_SCALE
    owner_delta: int256 = -convert(amount, int256)
    signed_cost: int256 = -convert(cost, int256)
    if size < 0:
        owner_delta = -owner_delta
        signed_cost = -signed_cost
    # funding to this instant, valued at the engine's mark; nothing is written (fills settle it)
    index: int256 = self._funding_index(market_id, config, mark)
    signed_cost -= owner_delta * index // convert(_NOTIONAL_SCALE, int256)
    owner_result: TradeResult = self._trade(owner, segment, market_id, owner_delta, signed_cost, penalty + keeper_fee)
    receiver_result: TradeResult = self._trade(receiver, segment, market_id, -owner_delta, -signed_cost, 0)
    if keeper_fee > 0:
        receiver_result.account = packing._with_collateral(
            receiver_result.account, packing._lo(receiver_result.account) + convert(keeper_fee, int256)
        )
        self._accounts[receiver][segment] = receiver_result.account
    self._update_market_state(market_id, config, owner_result, receiver_result, 0, penalty)
    if check_receiver:
        self._check_after_trade(
            receiver, segment, market_id, mark, index, config, receiver_result, -owner_delta, -signed_cost
        )
    log PositionTransferred(
        owner=owner,
        receiver=receiver,
        market=market_id,
        owner_delta=owner_delta,
        price=price,
        penalty=penalty,
        keeper_fee=keeper_fee,
        owner_realized=owner_result.realized,
        funding_index=index,
    )
    return self._health(
        owner, segment, owner_result.account, market_id, mark, index, owner_result.position, config, False
    )


@external
def cover_bad_debt(owner: address, segment: uint256) -> uint256:
    """
    @notice Liquidation engine only: a flat account with negative collateral is paid up by
            the segment's insurance pool (which draws on the backstop for what it lacks).
            Whatever stays unpaid remains as negative collateral, visible and evented.
    @return uint256 The deficit still unpaid.
    """
    access_control._check_role(ENGINE_ROLE, msg.sender)
    account: uint256 = self._accounts[owner][segment]
    assert account >> 128 == 0, "vault: account has positions"
    collateral: int256 = packing._lo(account)
    assert collateral < 0, "vault: no bad debt"
    deficit: uint256 = convert(-collateral, uint256)
    pool: IInsurancePool = self.segment_pool[segment]
    paid: uint256 = 0
    if pool.address != empty(address):
        before: uint256 = staticcall quote.balanceOf(self)
        paid = extcall pool.cover(deficit)
        assert paid <= deficit and staticcall quote.balanceOf(self) - before == paid, "vault: cover not received"
    self._accounts[owner][segment] = packing._with_collateral(account, collateral + convert(paid, int256))
    self._add_cash(segment, paid)
    log BadDebtCovered(owner=owner, segment=segment, deficit=deficit, paid=paid, unpaid=deficit - paid)
    return deficit - paid


@external
def gate_withdrawals(segment: uint256, until: uint256):
    """
    @notice Liquidation engine only: block withdrawals from `segment` until `until` (a keeper
            saw a deficit there that the pools cannot pay). A gate only ever extends.
    @param segment The segment.
    @param until Timestamp until which withdrawals revert.
    """
    access_control._check_role(ENGINE_ROLE, msg.sender)
    state: uint256 = self._segment_state[segment]
    if until > state >> packing.SEGMENT_GATE:
        self._segment_state[segment] = (state & constants.MASK_192) | (until << packing.SEGMENT_GATE)
        log WithdrawalsGated(segment=segment, until=until)


# ---------------------------------------------------------------- views

@external
@view
def order_hash(order: Order) -> bytes32:
    """
    @notice The EIP-712 digest of `order` (what the maker signs; key of `filled`).
    """
    return self._order_digest(order)


@external
@view
def collateral(owner: address, segment: uint256) -> int256:
    """
    @notice Realized collateral of (owner, segment); negative only after bad debt.
    """
    return packing._lo(self._accounts[owner][segment])



@external
@view
def position(owner: address, market: uint256) -> (int256, int256):
    """
    @notice (signed size, signed cost basis in quote units) of owner in market. The basis is
            net of the funding index the position joined at, so its PnL at a mark is
            floor(size * (mark - funding_index(market, mark)) / scale) - basis.
    @param owner The position's owner.
    @param market The market.
    @return (int256, int256) Size and cost basis.
    """
    packed: uint256 = self._positions[owner][market]
    return packing._lo(packed), packing._hi(packed)


@external
@view
def funding_index(market: uint256, price: uint256) -> int256:
    """
    @notice The funding index of `market` now (quote price units per unit of size): stored at
            its last fill plus what accrued since, valued at `price`. Longs pay its rise.
    @param market The market.
    @param price The price the accrual since the last fill is valued at (the oracle's).
    @return int256 The index.
    """
    return self._funding_index(market, self._market_config[market], price)


@external
@view
def account_health(owner: address, segment: uint256) -> IMarginVault.AccountHealth:
    """
    @notice Collateral, equity, IM, MM and total notional of one account.
    """
    return self._health(owner, segment, self._accounts[owner][segment], max_value(uint256), 0, 0, 0, 0, False)


@external
@view
def market_config(market: uint256) -> uint256:
    """
    @notice The packed config word of a listed market (layout in packing.vy; VaultLens.market
            unpacks it).
    @param market The market id.
    @return uint256 The config word.
    """
    return self._config(market)


@external
@view
def market_state(market: uint256) -> uint256:
    """
    @notice The packed state word of a market: open interest, accrued fees and penalties.
    @param market The market id.
    @return uint256 The state word.
    """
    return self._market_state[market]


@external
@view
def market_funding(market: uint256) -> uint256:
    """
    @notice The packed funding word of `market` (layout in packing.vy; VaultLens decodes it).
    @param market The market.
    @return uint256 The funding word.
    """
    return self._market_funding[market]


@external
@view
def segment_listing(segment: uint256) -> uint256:
    """
    @notice The packed list of a segment's markets: count, then 8-bit ids in listing order.
    @param segment The segment.
    @return uint256 The listing word.
    """
    return self._segment_markets[segment]


@external
@view
def segment_state(segment: uint256) -> uint256:
    """
    @notice The packed state word of a segment: cash, withdrawals gated until.
    @param segment The segment.
    @return uint256 The state word.
    """
    return self._segment_state[segment]


@external
@view
def notional_scale() -> uint256:
    """
    @notice notional (quote units) = size * price // notional_scale().
    """
    return _NOTIONAL_SCALE


# ---------------------------------------------------------------- internal: trading

@internal
def _trade(owner: address, segment: uint256, market: uint256, delta: int256, cost: int256, fee: uint256) -> TradeResult:
    """
    @dev Apply a signed size change `delta` bought for signed `cost` (quote units; positive
         = paid) and charge `fee`. Realized PnL is rounded against the trader (signed ceil of
         the cost basis released), and the same `cost` moves to both sides, so the trade
         itself neither creates nor destroys quote units.
    """
    packed: uint256 = self._positions[owner][market]
    size: int256 = packing._lo(packed)
    entry: int256 = packing._hi(packed)
    realized: int256 = 0
    if size == 0 or (size > 0) == (delta > 0):
        entry += cost
    else:
        closing: int256 = min(abs(delta), abs(size))
        released: int256 = entry
        closing_value: int256 = cost
        if closing < abs(size):
            released = packing._ceil_div(entry * closing, abs(size))
        if closing < abs(delta):
            closing_value = packing._ceil_div(cost * closing, abs(delta))
        realized = -closing_value - released
        entry = entry - released + (cost - closing_value)
    new_size: int256 = size + delta
    position: uint256 = packing._pack(new_size, entry)
    self._positions[owner][market] = position

    account: uint256 = self._accounts[owner][segment]
    collateral: int256 = packing._lo(account) + realized - convert(fee, int256)
    mask: uint256 = account >> 128
    if new_size == 0:
        mask &= ~(1 << market)
    else:
        mask |= 1 << market
    account = packing._pack_account(collateral, mask)
    self._accounts[owner][segment] = account
    return TradeResult(old_size=size, new_size=new_size, realized=realized, fee=fee, position=position, account=account)


@internal
def _update_market_state(
    market: uint256, config: uint256, maker: TradeResult, taker: TradeResult, fees: uint256, penalty: uint256
):
    state: uint256 = self._market_state[market]
    long_delta: int256 = (
        max(maker.new_size, 0) - max(maker.old_size, 0) + max(taker.new_size, 0) - max(taker.old_size, 0)
    )
    open_interest: uint256 = convert(convert(state & constants.MASK_96, int256) + long_delta, uint256)
    if long_delta > 0:
        self._check_open_interest(open_interest <= (config >> packing.CONFIG_MAX_OI) * constants.WAD)
    accrued: uint256 = ((state >> packing.STATE_FEES) & constants.MASK_80) + fees
    penalties: uint256 = (state >> packing.STATE_PENALTIES) + penalty
    # overflow reverts (never wraps); sweep_fees is permissionless and empties both
    self._market_state[market] = packing._pack_market_state(open_interest, accrued, penalties)


@internal
@view
def _check_after_trade(
    owner: address,
    segment: uint256,
    market: uint256,
    mark: uint256,
    index: int256,
    config: uint256,
    result: TradeResult,
    delta: int256,
    cost: int256,
):
    """
    @dev Accept if min(collateral, equity) >= IM: unrealized profit never backs new risk
         (Mango 2022), unrealized loss always counts. Otherwise accept only a pure reduction
         (no increase, no flip) that keeps equity >= 0 and does not lower equity / MM.
    """
    after: IMarginVault.AccountHealth = self._health(
        owner, segment, result.account, market, mark, index, result.position, config, False
    )
    if min(after.collateral, after.equity) >= convert(after.im, int256):
        return
    ok: bool = self._reduces(result, delta) and after.equity >= 0
    # Equity and MM before the trade, derived from the after-state without re-reading storage.
    # a position's value is floor(size * (mark - funding index) / scale) - cost basis
    net: int256 = convert(mark, int256) - index
    old_value: int256 = packing._floor_div(result.old_size * net, convert(_NOTIONAL_SCALE, int256))
    new_value: int256 = packing._floor_div(result.new_size * net, convert(_NOTIONAL_SCALE, int256))
    # equity change of the trade = realized - fee + change of this market's unrealized PnL,
    # where unrealized = cost - entry and entry changed by (cost paid - released cost).
    equity_change: int256 = new_value - old_value - cost
    equity_before: int256 = after.equity - equity_change + convert(result.fee, int256)
    im_old: uint256 = 0
    mm_old: uint256 = 0
    im_new: uint256 = 0
    mm_new: uint256 = 0
    im_old, mm_old = self._margins(self._notional_up(abs(result.old_size), mark), config)
    im_new, mm_new = self._margins(self._notional_up(abs(result.new_size), mark), config)
    mm_before: uint256 = after.mm + mm_old - mm_new
    # one revert site for the three reasons (each site costs ~100 B of code)
    assert ok and after.equity * convert(mm_before, int256) >= equity_before * convert(after.mm, int256), (
        "vault: below initial margin"
    )


# ---------------------------------------------------------------- internal: health

@internal
@pure
def _free_margin(health: IMarginVault.AccountHealth) -> int256:
    # Perp v2's free collateral: unrealized profit backs nothing new, unrealized loss counts
    return min(health.collateral, health.equity) - convert(health.im, int256)


@internal
@view
def _health(
    owner: address,
    segment: uint256,
    account: uint256,
    known_market: uint256,
    known_price: uint256,
    known_index: int256,
    known_position: uint256,
    known_config: uint256,
    strict: bool,
) -> IMarginVault.AccountHealth:
    """
    @dev Mark every open position of (owner, segment). `known_price` is reused for
         `known_market` so that a fill reads each oracle once. A market without a fresh price
         is valued against the account (longs at the oracle's low bound, shorts at its high
         bound, see OracleAdapter.price_range) so that one bad feed never freezes the
         liquidation of the account's other markets; `strict` (withdrawals) refuses it instead.
         `known_index` is `known_market`'s funding index at `known_price`, `known_position` its
         position word and `known_config` its config word: a trade has them, so they are not read again.
    """
    health: IMarginVault.AccountHealth = IMarginVault.AccountHealth(
        collateral=packing._lo(account), equity=packing._lo(account), im=0, mm=0, notional=0
    )
    mask: uint256 = account >> 128
    if mask == 0:
        return health
    if mask == 1 << known_market:
        # the common case: only the traded market is open, so no segment scan is needed
        return self._add_position(health, known_position, known_config, known_price, known_price, known_index)
    listed: uint256 = self._segment_markets[segment]
    for i: uint256 in range(packing.MAX_MARKETS_PER_SEGMENT):
        if i >= listed & constants.MASK_8:
            break
        market: uint256 = (listed >> (8 + 8 * i)) & constants.MASK_8
        if (mask >> market) & 1 == 0:
            continue
        position: uint256 = known_position
        config: uint256 = known_config
        low: uint256 = known_price
        high: uint256 = known_price
        index: int256 = known_index
        if market != known_market:
            if strict:
                low = staticcall oracle.price(market)
                high = low
            else:
                low, high = staticcall oracle.price_range(market)
            position = self._positions[owner][market]
            config = self._market_config[market]
            # the funding index at the price the position is marked at (see _add_position)
            index = self._funding_index(market, config, low if packing._lo(position) > 0 else high)
        health = self._add_position(health, position, config, low, high, index)
    return health


@internal
@view
def _add_position(
    health: IMarginVault.AccountHealth, packed: uint256, config: uint256, low: uint256, high: uint256, index: int256
) -> IMarginVault.AccountHealth:
    """
    @dev Add one position (its packed word, its market's config word) to `health`; `index` is the
         market's funding index at the price the position is marked at.
    """
    size: int256 = packing._lo(packed)
    # a long is marked at the low end of the price range, a short at the high end
    mark: uint256 = high
    if size > 0:
        mark = low
    notional: uint256 = self._notional_up(abs(size), mark)
    net: int256 = convert(mark, int256) - index
    im: uint256 = 0
    mm: uint256 = 0
    im, mm = self._margins(notional, config)
    return IMarginVault.AccountHealth(
        collateral=health.collateral,
        equity=health.equity
        + packing._floor_div(size * net, convert(_NOTIONAL_SCALE, int256))
        - packing._hi(packed),
        im=health.im + im,
        mm=health.mm + mm,
        notional=health.notional + notional,
    )


@internal
@view
def _margins(notional: uint256, config: uint256) -> (uint256, uint256):
    """
    @dev (IM, MM) of one position, rounded up. With a size knee K the ratios grow with the
         notional n, x (1 + n / K) (a position of K notional posts twice the base margin), IM
         at most the notional and MM at most IM x MM/IM ratio: margin is convex in size, so
         every part closed frees at least its base-ratio share (the engine's guard holds).
    """
    im_ratio: uint256 = (config >> packing.CONFIG_IM) & constants.MASK_64
    mm_ratio: uint256 = (config >> packing.CONFIG_MM) & constants.MASK_64
    im: uint256 = packing._mul_up(notional, im_ratio)
    mm: uint256 = packing._mul_up(notional, mm_ratio)
    knee: uint256 = (config >> packing.CONFIG_KNEE) * _KNEE_UNIT
    if knee == 0:
        return im, mm
    im = min((im * (knee + notional) + knee - 1) // knee, notional)
    mm = min((mm * (knee + notional) + knee - 1) // knee, (notional * mm_ratio + im_ratio - 1) // im_ratio)
    return im, mm


# ---------------------------------------------------------------- internal: funding

@internal
@view
def _funding_index(market: uint256, config: uint256, price: uint256) -> int256:
    """
    @dev The funding index of `market` now: the stored one plus what accrued since the last
         fill, valued at `price`.
    """
    index: int256 = 0
    premium: int256 = 0
    last: uint256 = 0
    index, premium, last = packing._unpack_funding(self._market_funding[market])
    return index + self._accrued(premium, block.timestamp - last, config, price)


@internal
def _settle_funding(market: uint256, config: uint256, fill_price: uint256, mark: uint256) -> int256:
    """
    @dev Accrue the funding index to this block (at most once per block) and fold the fill's
         premium over the mark into the market's time-weighted premium.
    @return int256 The funding index now.
    """
    word: uint256 = self._market_funding[market]
    index: int256 = 0
    premium: int256 = 0
    last: uint256 = 0
    index, premium, last = packing._unpack_funding(word)
    elapsed: uint256 = block.timestamp - last
    if elapsed == 0:
        return index
    index += self._accrued(premium, elapsed, config, mark)
    # the stored premium has faded by elapsed / period; the fill's own weighs elapsed / window
    faded: int256 = premium * convert(_FUNDING_PERIOD - min(elapsed, _FUNDING_PERIOD), int256) // convert(
        _FUNDING_PERIOD, int256
    )
    observed: int256 = (convert(fill_price, int256) - convert(mark, int256)) * convert(constants.WAD, int256) // convert(
        mark, int256
    )
    premium = faded + (observed - faded) * convert(min(elapsed, _PREMIUM_WINDOW), int256) // convert(_PREMIUM_WINDOW, int256)
    self._market_funding[market] = packing._pack_funding(index, premium, block.timestamp)
    return index


@internal
@pure
def _accrued(premium: int256, elapsed: uint256, config: uint256, price: uint256) -> int256:
    """
    @dev Funding per unit of size over `elapsed` seconds: the premium, clamped to half the
         IM - MM gap per period (an account at IM outlives two periods of the clamp before it
         reaches MM), fading linearly to zero over one period:
         price x rate x t (2P - t) / (2 P^2), t = min(elapsed, P).
    """
    if premium == 0 or elapsed == 0:
        return 0
    gap: int256 = convert(
        (((config >> packing.CONFIG_IM) & constants.MASK_64) - ((config >> packing.CONFIG_MM) & constants.MASK_64)) // 2,
        int256,
    )
    rate: int256 = max(min(premium, gap), -gap)
    t: uint256 = min(elapsed, _FUNDING_PERIOD)
    return rate * convert(price * t * (2 * _FUNDING_PERIOD - t), int256) // convert(
        2 * _FUNDING_PERIOD * _FUNDING_PERIOD * constants.WAD, int256
    )


# ---------------------------------------------------------------- internal: config

@internal
@view
def _config(market: uint256) -> uint256:
    config: uint256 = self._market_config[market]
    assert packing._is_listed(config), "vault: unknown market"
    return config


# ---------------------------------------------------------------- internal: orders

@internal
@view
def _order_digest(order: Order) -> bytes32:
    return eip712._hash_typed_data_v4(
        keccak256(
            abi_encode(
                ORDER_TYPEHASH,
                order.maker,
                order.market,
                order.size,
                order.price,
                order.nonce,
                order.expiry,
                order.reduce_only,
            )
        )
    )


# ---------------------------------------------------------------- internal: checks shared by several entry points

@internal
@pure
def _check_amount(amount: uint256):
    assert amount > 0, "vault: zero amount"


@internal
@pure
def _reduces(result: TradeResult, delta: int256) -> bool:
    # a pure reduction: the position existed, the trade goes against it and does not flip it
    return result.old_size != 0 and (result.old_size > 0) != (delta > 0) and abs(delta) <= abs(result.old_size)


@internal
@pure
def _check_transfer(ok: bool):
    assert ok, "vault: transfer failed"


@internal
@pure
def _check_distinct(maker: address, taker: address):
    assert maker != taker, "vault: self-match"


@internal
@pure
def _check_open_interest(ok: bool):
    assert ok, "vault: open interest cap"


@internal
@view
def _live_fill(digest: bytes32) -> uint256:
    # the base size already filled of a live (not cancelled) order
    done: uint256 = self.filled[digest]
    assert done != _CANCELLED, "vault: order cancelled"
    return done


@internal
def _send(receiver: address, amount: uint256):
    self._check_transfer(extcall quote.transfer(receiver, amount, default_return_value=True))


# ---------------------------------------------------------------- internal: segments

@internal
@view
def _check_segment(segment: uint256):
    assert segment < self.segment_count, "vault: unknown segment"


@internal
def _take_cash(segment: uint256, state: uint256, amount: uint256):
    # the segment's own tokens only: a loss elsewhere can never be paid with them
    assert amount <= state & constants.MASK_192, "vault: segment insolvent"
    self._segment_state[segment] = state - amount


@internal
def _add_cash(segment: uint256, amount: uint256):
    state: uint256 = self._segment_state[segment]
    assert (state & constants.MASK_192) + amount <= constants.MASK_192, "vault: segment cash overflow"
    self._segment_state[segment] = state + amount


# ---------------------------------------------------------------- internal: math and packing

@internal
@view
def _notional_up(size: int256, mark: uint256) -> uint256:
    return (convert(size, uint256) * mark + _NOTIONAL_SCALE - 1) // _NOTIONAL_SCALE
