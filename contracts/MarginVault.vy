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
     Conservation (DESIGN.md invariant 1), exact to the wei:
       quote.balanceOf(vault) == sum(collateral) + sum(accrued fees and penalties)
                                 - sum(entry notional)
     because every fill moves the same signed trade cost to both sides.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

from interfaces import IOracleAdapter
from interfaces import IInsurancePool

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

WAD: constant(uint256) = 10**18
BPS: constant(uint256) = 10_000
MAX_FEE_BPS: constant(uint256) = 100
MAX_BAND_BPS: constant(uint256) = 5_000
MAX_SEGMENTS: constant(uint256) = 32
MAX_MARKETS: constant(uint256) = 128
MAX_MARKETS_PER_SEGMENT: constant(uint256) = 16
MAX_BATCH: constant(uint256) = 128
MAX_QUOTE_DECIMALS: constant(uint256) = 18

MASK_8: constant(uint256) = 2**8 - 1
MASK_16: constant(uint256) = 2**16 - 1
MASK_64: constant(uint256) = 2**64 - 1
MASK_80: constant(uint256) = 2**80 - 1
MASK_96: constant(uint256) = 2**96 - 1
MASK_128: constant(uint256) = 2**128 - 1
MASK_192: constant(uint256) = 2**192 - 1
CANCELLED: constant(uint256) = max_value(uint256)


# ---------------------------------------------------------------- types

struct Order:
    maker: address
    market: uint256
    size: int256
    price: uint256
    nonce: uint256
    expiry: uint256
    reduce_only: bool


struct MarketParams:
    segment: uint256
    im_ratio: uint256
    mm_ratio: uint256
    taker_fee_bps: uint256
    maker_fee_bps: uint256
    price_band_bps: uint256
    max_open_interest: uint256


struct AccountHealth:
    collateral: int256
    equity: int256
    im: uint256
    mm: uint256
    notional: uint256


struct TradeResult:
    old_size: int256
    new_size: int256
    realized: int256
    fee: uint256


# ---------------------------------------------------------------- storage

quote: public(immutable(IERC20))
quote_decimals: public(immutable(uint256))
# notional (quote units) = size (1e18) * price (1e18) // NOTIONAL_SCALE
NOTIONAL_SCALE: immutable(uint256)

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

_accounts: HashMap[address, HashMap[uint256, uint256]]
_positions: HashMap[address, HashMap[uint256, uint256]]

# order digest => base size filled (CANCELLED once cancelled)
filled: public(HashMap[bytes32, uint256])

# segment => quote tokens held for the segment (low 192 bits) | withdrawals gated until (high 64).
# Per segment, exactly: cash == sum(collateral) + accrued fees and penalties - sum(entry notional),
# so the token balance is split between segments and a withdrawal can only ever take its own
# segment's tokens: no loss in one segment can make another segment's withdrawal fail.
_segment_state: HashMap[uint256, uint256]


# ---------------------------------------------------------------- events

event SegmentAdded:
    segment: indexed(uint256)
    label: String[32]

event MarketAdded:
    market: indexed(uint256)
    segment: indexed(uint256)
    label: String[32]

event MarketParamsSet:
    market: indexed(uint256)
    im_ratio: uint256
    mm_ratio: uint256
    taker_fee_bps: uint256
    maker_fee_bps: uint256
    price_band_bps: uint256
    max_open_interest: uint256

event TreasurySet:
    treasury: indexed(address)

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

event OrderCancelled:
    order_hash: indexed(bytes32)
    maker: indexed(address)

event FeesSwept:
    segment: indexed(uint256)
    to_pool: uint256
    to_treasury: uint256

event SegmentPoolSet:
    segment: indexed(uint256)
    pool: indexed(address)

event PoolFeeShareSet:
    share_bps: uint256

event PositionTransferred:
    owner: indexed(address)
    receiver: indexed(address)
    market: indexed(uint256)
    owner_delta: int256
    price: uint256
    penalty: uint256
    keeper_fee: uint256
    owner_realized: int256

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
    assert decimals <= MAX_QUOTE_DECIMALS, "vault: quote decimals > 18"
    assert treasury_ != empty(address), "vault: zero treasury"
    quote = quote_
    quote_decimals = decimals
    NOTIONAL_SCALE = 10 ** (36 - decimals)
    oracle = oracle_
    self.treasury = treasury_
    self.pool_fee_share_bps = BPS // 2
    access_control._grant_role(RISK_ADMIN_ROLE, msg.sender)
    access_control._grant_role(GUARDIAN_ROLE, msg.sender)


# ---------------------------------------------------------------- admin

@external
def add_segment(label: String[32]) -> uint256:
    """
    @notice Register a new segment (asset class). Its accounts are isolated from others.
    @param label A human-readable name, e.g. "majors".
    @return uint256 The new segment id.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    segment: uint256 = self.segment_count
    assert segment < MAX_SEGMENTS, "vault: too many segments"
    self.segment_count = segment + 1
    log SegmentAdded(segment=segment, label=label)
    return segment


@external
def add_market(label: String[32], segment: uint256, params: MarketParams) -> uint256:
    """
    @notice Register a market in `segment`; the oracle must already price it.
    @param label A human-readable name, e.g. "ETH-PERP".
    @param segment The segment the market belongs to.
    @param params Risk and fee parameters (params.segment is ignored).
    @return uint256 The new market id.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    self._check_segment(segment)
    market: uint256 = self.market_count
    assert market < MAX_MARKETS, "vault: too many markets"
    listed: uint256 = self._segment_markets[segment]
    count: uint256 = listed & MASK_8
    assert count < MAX_MARKETS_PER_SEGMENT, "vault: segment full"
    assert staticcall oracle.has_feed(market), "vault: market has no feed"
    self._segment_markets[segment] = ((listed | (market << (8 + 8 * count))) & ~MASK_8) | (count + 1)
    self.market_count = market + 1
    self._set_params(market, segment, params)
    log MarketAdded(market=market, segment=segment, label=label)
    return market


@external
def set_market_params(market: uint256, params: MarketParams):
    """
    @notice Update the risk and fee parameters of a market (its segment never changes).
    @param market The market id.
    @param params New parameters (params.segment is ignored).
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    config: uint256 = self._config(market)
    self._set_params(market, config & MASK_8, params)


@external
def set_treasury(treasury_: address):
    """
    @notice Set the receiver of the treasury's share of fees.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert treasury_ != empty(address), "vault: zero treasury"
    self.treasury = treasury_
    log TreasurySet(treasury=treasury_)


@external
def set_segment_pool(segment: uint256, pool: IInsurancePool):
    """
    @notice Register the insurance pool that earns the fees and covers the deficits of
            `segment`; it must hold the vault's quote token.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self._check_segment(segment)
    assert staticcall pool.asset() == quote.address, "vault: pool asset mismatch"
    self.segment_pool[segment] = pool
    log SegmentPoolSet(segment=segment, pool=pool.address)


@external
def set_pool_fee_share(share_bps: uint256):
    """
    @notice Share of trading fees (bps) paid to segment pools; the rest goes to the treasury.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    assert share_bps <= BPS, "vault: bad fee share"
    self.pool_fee_share_bps = share_bps
    log PoolFeeShareSet(share_bps=share_bps)


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
    assert extcall quote.transferFrom(msg.sender, self, amount, default_return_value=True), "vault: transfer failed"
    assert staticcall quote.balanceOf(self) - before == amount, "vault: fee-on-transfer token"
    account: uint256 = self._accounts[msg.sender][segment]
    self._accounts[msg.sender][segment] = self._with_collateral(account, self._lo(account) + convert(amount, int256))
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
    assert block.timestamp >= state >> 192, "vault: withdrawals gated"
    account: uint256 = self._accounts[msg.sender][segment]
    collateral: int256 = self._lo(account)
    assert collateral >= 0 and amount <= convert(collateral, uint256), "vault: insufficient collateral"
    account = self._with_collateral(account, collateral - convert(amount, int256))
    self._accounts[msg.sender][segment] = account
    if account >> 128 != 0:
        # strict: a market without a fresh price blocks the withdrawal, never values it
        health: AccountHealth = self._health(msg.sender, segment, account, max_value(uint256), 0, True)
        assert self._free_margin(health) >= 0, "vault: below initial margin"
    # the segment's own tokens only: a loss elsewhere can never be paid with them
    assert amount <= state & MASK_192, "vault: segment insolvent"
    self._segment_state[segment] = state - amount
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
    assert order.size != 0, "vault: zero order size"
    assert order.size != min_value(int256), "vault: bad order size"
    assert block.timestamp <= order.expiry, "vault: order expired"
    assert order.maker != msg.sender, "vault: self-match"
    config: uint256 = self._config(order.market)

    digest: bytes32 = self._order_digest(order)
    done: uint256 = self.filled[digest]
    assert done != CANCELLED, "vault: order cancelled"
    # done <= |size| always holds, so this cannot overflow
    assert amount <= convert(abs(order.size), uint256) - done, "vault: overfill"
    # no market's cap can exceed this: it keeps packed sizes far from int128 overflow
    assert amount <= MASK_64 * WAD, "vault: open interest cap"
    # snekmate returns the zero address for a malformed signature: never a valid maker
    signer: address = ecdsa._recover_sig(digest, signature)
    assert signer == order.maker and signer != empty(address), "vault: bad signature"
    self.filled[digest] = done + amount

    mark: uint256 = staticcall oracle.price(order.market)
    band: uint256 = (config >> 176) & MASK_16
    deviation: uint256 = order.price - mark if order.price > mark else mark - order.price
    assert deviation <= band * mark // BPS, "vault: price outside band"

    cost: uint256 = amount * order.price // NOTIONAL_SCALE
    assert cost > 0, "vault: dust fill"
    maker_delta: int256 = convert(amount, int256)
    signed_value: int256 = convert(cost, int256)
    if order.size < 0:
        maker_delta = -maker_delta
        signed_value = -signed_value
    segment: uint256 = config & MASK_8

    # fees round up: never in the trader's favour
    maker_fee: uint256 = (cost * ((config >> 160) & MASK_16) + BPS - 1) // BPS
    taker_fee: uint256 = (cost * ((config >> 144) & MASK_16) + BPS - 1) // BPS
    maker: TradeResult = self._trade(order.maker, segment, order.market, maker_delta, signed_value, maker_fee)
    if order.reduce_only:
        assert self._reduces(maker, maker_delta), "vault: not reduce-only"
    taker: TradeResult = self._trade(msg.sender, segment, order.market, -maker_delta, -signed_value, taker_fee)

    # reduce-only mode while paused: both sides may only reduce
    assert not paused or (self._reduces(maker, maker_delta) and self._reduces(taker, -maker_delta)), (
        "vault: paused, reduce-only"
    )
    self._update_market_state(order.market, config, maker, taker, maker_fee + taker_fee, 0)
    self._check_after_trade(order.maker, segment, order.market, mark, config, maker, maker_delta, signed_value)
    self._check_after_trade(msg.sender, segment, order.market, mark, config, taker, -maker_delta, -signed_value)

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
    )


@external
def cancel(order: Order):
    """
    @notice Cancel the caller's own order; its unfilled part can never be filled.
    @param order The order as signed.
    """
    assert order.maker == msg.sender, "vault: not maker"
    digest: bytes32 = self._order_digest(order)
    assert self.filled[digest] != CANCELLED, "vault: order cancelled"
    self.filled[digest] = CANCELLED
    log OrderCancelled(order_hash=digest, maker=msg.sender)


# ---------------------------------------------------------------- fees

@external
def sweep_fees(segment: uint256) -> uint256:
    """
    @notice Pay out what the markets of `segment` accrued: `pool_fee_share_bps` of trading
            fees plus all liquidation penalties to the segment's insurance pool (as vesting
            income), the rest of the fees to the treasury. Without a pool, fees all go to
            the treasury and penalties wait for the pool.
    @param segment The segment whose fees are swept.
    @return uint256 The total amount paid out.
    """
    self._check_segment(segment)
    pool: IInsurancePool = self.segment_pool[segment]
    has_pool: bool = pool.address != empty(address)
    fees: uint256 = 0
    penalties: uint256 = 0
    listed: uint256 = self._segment_markets[segment]
    for i: uint256 in range(MAX_MARKETS_PER_SEGMENT):
        if i >= listed & MASK_8:
            break
        market: uint256 = (listed >> (8 + 8 * i)) & MASK_8
        state: uint256 = self._market_state[market]
        fees += (state >> 96) & MASK_80
        if has_pool:
            penalties += state >> 176
            self._market_state[market] = state & MASK_96
        else:
            self._market_state[market] = state & ~(MASK_80 << 96)

    fees_to_pool: uint256 = 0
    if has_pool:
        fees_to_pool = fees * self.pool_fee_share_bps // BPS
    to_treasury: uint256 = fees - fees_to_pool
    to_pool: uint256 = fees_to_pool + penalties
    # fees and penalties are part of the segment's cash until they leave here
    state: uint256 = self._segment_state[segment]
    assert state & MASK_192 >= to_pool + to_treasury, "vault: segment insolvent"
    self._segment_state[segment] = state - (to_pool + to_treasury)
    if to_treasury > 0:
        self._send(self.treasury, to_treasury)
    if to_pool > 0:
        assert extcall quote.approve(pool.address, to_pool, default_return_value=True), "vault: approve failed"
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
) -> AccountHealth:
    """
    @notice Liquidation engine only: move `amount` (base size) of owner's position in
            `market_id` to `receiver` at `price`, charge `penalty` (to the segment pool) and
            `keeper_fee` (to the receiver) from the owner's collateral, which may go
            negative (bad debt, settled by `cover_bad_debt`).
    @param check_receiver Whether the receiver must meet IM afterwards (liquidators must;
           auto-deleveraged counterparties only reduce).
    @param mark The oracle price the engine read for `market_id` in this transaction.
    @return AccountHealth The owner's health after the transfer.
    """
    access_control._check_role(ENGINE_ROLE, msg.sender)
    # not paused here: owners can add margin and reduce while paused, so liquidation goes on
    self._check_amount(amount)
    assert owner != receiver, "vault: self-match"
    config: uint256 = self._config(market_id)
    segment: uint256 = config & MASK_8
    size: int256 = self._lo(self._positions[owner][market_id])
    assert size != 0, "vault: no position"
    assert amount <= convert(abs(size), uint256), "vault: amount exceeds position"

    cost: uint256 = amount * price // NOTIONAL_SCALE
    owner_delta: int256 = -convert(amount, int256)
    signed_cost: int256 = -convert(cost, int256)
    if size < 0:
        owner_delta = -owner_delta
        signed_cost = -signed_cost
    owner_result: TradeResult = self._trade(owner, segment, market_id, owner_delta, signed_cost, penalty + keeper_fee)
    receiver_result: TradeResult = self._trade(receiver, segment, market_id, -owner_delta, -signed_cost, 0)
    if keeper_fee > 0:
        account: uint256 = self._accounts[receiver][segment]
        self._accounts[receiver][segment] = self._with_collateral(account, self._lo(account) + convert(keeper_fee, int256))
    self._update_market_state(market_id, config, owner_result, receiver_result, 0, penalty)
    if check_receiver:
        self._check_after_trade(receiver, segment, market_id, mark, config, receiver_result, -owner_delta, -signed_cost)
    log PositionTransferred(
        owner=owner,
        receiver=receiver,
        market=market_id,
        owner_delta=owner_delta,
        price=price,
        penalty=penalty,
        keeper_fee=keeper_fee,
        owner_realized=owner_result.realized,
    )
    return self._health(owner, segment, self._accounts[owner][segment], market_id, mark, False)


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
    collateral: int256 = self._lo(account)
    assert collateral < 0, "vault: no bad debt"
    deficit: uint256 = convert(-collateral, uint256)
    pool: IInsurancePool = self.segment_pool[segment]
    paid: uint256 = 0
    if pool.address != empty(address):
        before: uint256 = staticcall quote.balanceOf(self)
        paid = extcall pool.cover(deficit)
        assert paid <= deficit and staticcall quote.balanceOf(self) - before == paid, "vault: cover not received"
    self._accounts[owner][segment] = self._with_collateral(account, collateral + convert(paid, int256))
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
    if until > state >> 192:
        self._segment_state[segment] = (state & MASK_192) | (until << 192)
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
    return self._lo(self._accounts[owner][segment])


@external
@view
def position(owner: address, market: uint256) -> (int256, int256):
    """
    @notice (signed size, signed entry notional in quote units) of owner in market.
    """
    packed: uint256 = self._positions[owner][market]
    return self._lo(packed), self._hi(packed)


@external
@view
def equity(owner: address, segment: uint256) -> int256:
    """
    @notice Collateral plus unrealized PnL at the oracle price (quote units).
    """
    return self._health(owner, segment, self._accounts[owner][segment], max_value(uint256), 0, False).equity


@external
@view
def margin_requirements(owner: address, segment: uint256) -> (uint256, uint256):
    """
    @notice (initial margin, maintenance margin) of the account at the oracle price.
    """
    health: AccountHealth = self._health(owner, segment, self._accounts[owner][segment], max_value(uint256), 0, False)
    return health.im, health.mm


@external
@view
def is_liquidatable(owner: address, segment: uint256) -> bool:
    """
    @notice Whether the account holds positions and its equity is below maintenance margin.
    """
    account: uint256 = self._accounts[owner][segment]
    if account >> 128 == 0:
        return False
    health: AccountHealth = self._health(owner, segment, account, max_value(uint256), 0, False)
    return health.equity < convert(health.mm, int256)


@external
@view
def account_health(owner: address, segment: uint256) -> AccountHealth:
    """
    @notice Collateral, equity, IM, MM and total notional of one account.
    """
    return self._health(owner, segment, self._accounts[owner][segment], max_value(uint256), 0, False)


@external
@view
def health_of(owners: DynArray[address, MAX_BATCH], segment: uint256) -> DynArray[AccountHealth, MAX_BATCH]:
    """
    @notice Collateral, equity, IM and MM of many accounts of one segment in one call,
            for keepers scanning for liquidations.
    """
    result: DynArray[AccountHealth, MAX_BATCH] = []
    for owner: address in owners:
        result.append(self._health(owner, segment, self._accounts[owner][segment], max_value(uint256), 0, False))
    return result


@external
@view
def market(market_id: uint256) -> MarketParams:
    """
    @notice The parameters of a market.
    """
    return self._unpack_config(self._config(market_id))


@external
@view
def segment_markets(segment: uint256) -> DynArray[uint256, MAX_MARKETS_PER_SEGMENT]:
    """
    @notice The market ids of a segment, in listing order.
    """
    listed: uint256 = self._segment_markets[segment]
    result: DynArray[uint256, MAX_MARKETS_PER_SEGMENT] = []
    for i: uint256 in range(MAX_MARKETS_PER_SEGMENT):
        if i >= listed & MASK_8:
            break
        result.append((listed >> (8 + 8 * i)) & MASK_8)
    return result


@external
@view
def open_interest(market_id: uint256) -> uint256:
    """
    @notice Total long (= total short) base size of a market.
    """
    return self._market_state[market_id] & MASK_96


@external
@view
def accrued_fees(market_id: uint256) -> uint256:
    """
    @notice Fees accrued by a market and not yet swept (quote units).
    """
    return (self._market_state[market_id] >> 96) & MASK_80


@external
@view
def accrued_penalties(market_id: uint256) -> uint256:
    """
    @notice Liquidation penalties accrued by a market for its segment's pool (quote units).
    """
    return self._market_state[market_id] >> 176


@external
@view
def segment_cash(segment: uint256) -> (uint256, uint256):
    """
    @notice (quote tokens held for `segment`, timestamp until which its withdrawals are gated).
    @param segment The segment.
    @return uint256 The segment's cash (quote units).
    @return uint256 Withdrawals revert before this timestamp (0: never gated).
    """
    state: uint256 = self._segment_state[segment]
    return state & MASK_192, state >> 192


@external
@view
def notional_scale() -> uint256:
    """
    @notice notional (quote units) = size * price // notional_scale().
    """
    return NOTIONAL_SCALE


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
    size: int256 = self._lo(packed)
    entry: int256 = self._hi(packed)
    realized: int256 = 0
    if size == 0 or (size > 0) == (delta > 0):
        entry += cost
    else:
        closing: int256 = min(abs(delta), abs(size))
        released: int256 = entry
        closing_value: int256 = cost
        if closing < abs(size):
            released = self._ceil_div(entry * closing, abs(size))
        if closing < abs(delta):
            closing_value = self._ceil_div(cost * closing, abs(delta))
        realized = -closing_value - released
        entry = entry - released + (cost - closing_value)
    new_size: int256 = size + delta
    self._positions[owner][market] = self._pack(new_size, entry)

    account: uint256 = self._accounts[owner][segment]
    collateral: int256 = self._lo(account) + realized - convert(fee, int256)
    mask: uint256 = account >> 128
    if new_size == 0:
        mask &= ~(1 << market)
    else:
        mask |= 1 << market
    self._accounts[owner][segment] = self._pack_account(collateral, mask)
    return TradeResult(old_size=size, new_size=new_size, realized=realized, fee=fee)


@internal
def _update_market_state(
    market: uint256, config: uint256, maker: TradeResult, taker: TradeResult, fees: uint256, penalty: uint256
):
    state: uint256 = self._market_state[market]
    long_delta: int256 = (
        max(maker.new_size, 0) - max(maker.old_size, 0) + max(taker.new_size, 0) - max(taker.old_size, 0)
    )
    open_interest: uint256 = convert(convert(state & MASK_96, int256) + long_delta, uint256)
    if long_delta > 0:
        assert open_interest <= (config >> 192) * WAD, "vault: open interest cap"
    accrued: uint256 = ((state >> 96) & MASK_80) + fees
    penalties: uint256 = (state >> 176) + penalty
    # overflow reverts (never wraps); sweep_fees is permissionless and empties both
    assert accrued <= MASK_80 and penalties <= MASK_80 and open_interest <= MASK_96, "vault: market state overflow"
    self._market_state[market] = open_interest | (accrued << 96) | (penalties << 176)


@internal
@view
def _check_after_trade(
    owner: address,
    segment: uint256,
    market: uint256,
    mark: uint256,
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
    after: AccountHealth = self._health(owner, segment, self._accounts[owner][segment], market, mark, False)
    if min(after.collateral, after.equity) >= convert(after.im, int256):
        return
    ok: bool = self._reduces(result, delta) and after.equity >= 0
    # Equity and MM before the trade, derived from the after-state without re-reading storage.
    old_value: int256 = self._floor_div(result.old_size * convert(mark, int256), convert(NOTIONAL_SCALE, int256))
    new_value: int256 = self._floor_div(result.new_size * convert(mark, int256), convert(NOTIONAL_SCALE, int256))
    # equity change of the trade = realized - fee + change of this market's unrealized PnL,
    # where unrealized = cost - entry and entry changed by (cost paid - released cost).
    equity_change: int256 = new_value - old_value - cost
    equity_before: int256 = after.equity - equity_change + convert(result.fee, int256)
    mm_ratio: uint256 = (config >> 80) & MASK_64
    mm_before: uint256 = (
        after.mm
        + self._mul_up(self._notional_up(abs(result.old_size), mark), mm_ratio)
        - self._mul_up(self._notional_up(abs(result.new_size), mark), mm_ratio)
    )
    # one revert site for the three reasons (each site costs ~100 B of code)
    assert ok and after.equity * convert(mm_before, int256) >= equity_before * convert(after.mm, int256), (
        "vault: below initial margin"
    )


# ---------------------------------------------------------------- internal: health

@internal
@pure
def _free_margin(health: AccountHealth) -> int256:
    # Perp v2's free collateral: unrealized profit backs nothing new, unrealized loss counts
    return min(health.collateral, health.equity) - convert(health.im, int256)


@internal
@view
def _health(
    owner: address, segment: uint256, account: uint256, known_market: uint256, known_price: uint256, strict: bool
) -> AccountHealth:
    """
    @dev Mark every open position of (owner, segment). `known_price` is reused for
         `known_market` so that a fill reads each oracle once. A market without a fresh price
         is valued against the account (longs at the oracle's low bound, shorts at its high
         bound, see OracleAdapter.price_range) so that one bad feed never freezes the
         liquidation of the account's other markets; `strict` (withdrawals) refuses it instead.
    """
    health: AccountHealth = AccountHealth(
        collateral=self._lo(account), equity=self._lo(account), im=0, mm=0, notional=0
    )
    mask: uint256 = account >> 128
    if mask == 0:
        return health
    if mask == 1 << known_market:
        # the common case: only the traded market is open, so no segment scan is needed
        return self._add_position(health, owner, known_market, known_price, known_price)
    listed: uint256 = self._segment_markets[segment]
    for i: uint256 in range(MAX_MARKETS_PER_SEGMENT):
        if i >= listed & MASK_8:
            break
        market: uint256 = (listed >> (8 + 8 * i)) & MASK_8
        if (mask >> market) & 1 == 0:
            continue
        low: uint256 = known_price
        high: uint256 = known_price
        if market != known_market:
            if strict:
                low = staticcall oracle.price(market)
                high = low
            else:
                low, high = staticcall oracle.price_range(market)
        health = self._add_position(health, owner, market, low, high)
    return health


@internal
@view
def _add_position(health: AccountHealth, owner: address, market: uint256, low: uint256, high: uint256) -> AccountHealth:
    packed: uint256 = self._positions[owner][market]
    size: int256 = self._lo(packed)
    # a long is marked at the low end of the price range, a short at the high end
    mark: uint256 = high
    if size > 0:
        mark = low
    notional: uint256 = self._notional_up(abs(size), mark)
    config: uint256 = self._market_config[market]
    return AccountHealth(
        collateral=health.collateral,
        equity=health.equity
        + self._floor_div(size * convert(mark, int256), convert(NOTIONAL_SCALE, int256))
        - self._hi(packed),
        im=health.im + self._mul_up(notional, (config >> 16) & MASK_64),
        mm=health.mm + self._mul_up(notional, (config >> 80) & MASK_64),
        notional=health.notional + notional,
    )


# ---------------------------------------------------------------- internal: config

@internal
def _set_params(market: uint256, segment: uint256, params: MarketParams):
    assert params.mm_ratio > 0 and params.mm_ratio < params.im_ratio and params.im_ratio <= WAD, "vault: bad margin ratios"
    assert params.taker_fee_bps <= MAX_FEE_BPS and params.maker_fee_bps <= MAX_FEE_BPS, "vault: fee too high"
    assert params.price_band_bps > 0 and params.price_band_bps <= MAX_BAND_BPS, "vault: bad price band"
    assert params.max_open_interest > 0 and params.max_open_interest <= MASK_64, "vault: bad open interest cap"
    self._market_config[market] = (
        segment
        | (1 << 8)
        | (params.im_ratio << 16)
        | (params.mm_ratio << 80)
        | (params.taker_fee_bps << 144)
        | (params.maker_fee_bps << 160)
        | (params.price_band_bps << 176)
        | (params.max_open_interest << 192)
    )
    log MarketParamsSet(
        market=market,
        im_ratio=params.im_ratio,
        mm_ratio=params.mm_ratio,
        taker_fee_bps=params.taker_fee_bps,
        maker_fee_bps=params.maker_fee_bps,
        price_band_bps=params.price_band_bps,
        max_open_interest=params.max_open_interest,
    )


@internal
@view
def _config(market: uint256) -> uint256:
    config: uint256 = self._market_config[market]
    assert (config >> 8) & 1 == 1, "vault: unknown market"
    return config


@internal
@pure
def _unpack_config(config: uint256) -> MarketParams:
    return MarketParams(
        segment=config & MASK_8,
        im_ratio=(config >> 16) & MASK_64,
        mm_ratio=(config >> 80) & MASK_64,
        taker_fee_bps=(config >> 144) & MASK_16,
        maker_fee_bps=(config >> 160) & MASK_16,
        price_band_bps=(config >> 176) & MASK_16,
        max_open_interest=config >> 192,
    )


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
def _send(receiver: address, amount: uint256):
    assert extcall quote.transfer(receiver, amount, default_return_value=True), "vault: transfer failed"


# ---------------------------------------------------------------- internal: segments

@internal
@view
def _check_segment(segment: uint256):
    assert segment < self.segment_count, "vault: unknown segment"


@internal
def _add_cash(segment: uint256, amount: uint256):
    state: uint256 = self._segment_state[segment]
    assert (state & MASK_192) + amount <= MASK_192, "vault: segment cash overflow"
    self._segment_state[segment] = state + amount


# ---------------------------------------------------------------- internal: math and packing

@internal
@view
def _notional_up(size: int256, mark: uint256) -> uint256:
    return (convert(size, uint256) * mark + NOTIONAL_SCALE - 1) // NOTIONAL_SCALE


@internal
@pure
def _mul_up(amount: uint256, ratio: uint256) -> uint256:
    return (amount * ratio + WAD - 1) // WAD


@internal
@pure
def _ceil_div(numerator: int256, denominator: int256) -> int256:
    # denominator > 0; Vyper's signed // truncates toward zero, which is ceil for negatives
    if numerator <= 0:
        return numerator // denominator
    return (numerator + denominator - 1) // denominator


@internal
@pure
def _floor_div(numerator: int256, denominator: int256) -> int256:
    # denominator > 0
    if numerator >= 0:
        return numerator // denominator
    return -((-numerator + denominator - 1) // denominator)


@internal
@pure
def _lo(word: uint256) -> int256:
    return convert(convert(word << 128, bytes32), int256) >> 128


@internal
@pure
def _hi(word: uint256) -> int256:
    return convert(convert(word, bytes32), int256) >> 128


@internal
@pure
def _pack(lo: int256, hi: int256) -> uint256:
    low: int128 = convert(lo, int128)
    high: int128 = convert(hi, int128)
    return (convert(convert(convert(high, int256), bytes32), uint256) << 128) | (
        convert(convert(convert(low, int256), bytes32), uint256) & MASK_128
    )


@internal
@pure
def _pack_account(collateral: int256, mask: uint256) -> uint256:
    low: int128 = convert(collateral, int128)
    return (mask << 128) | (convert(convert(convert(low, int256), bytes32), uint256) & MASK_128)


@internal
@pure
def _with_collateral(account: uint256, collateral: int256) -> uint256:
    return self._pack_account(collateral, account >> 128)
