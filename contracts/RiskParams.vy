# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize gas
"""
@title RiskParams
@notice Margin that follows volatility. Each `poke(market)` folds the market's newest oracle
        round into an EWMA of squared log returns, time-scaled for irregular rounds
        (alpha = 1 - e^(-dt/tau) applied to r^2/dt, so the estimate is a variance per second
        whatever the spacing of the rounds), and pushes
            MM = clamp(z x sigma_eff x sqrt(horizon), floor, cap),   IM = im_multiple x MM
        into the vault's packed config word (a fill pays no extra CALL), changing only the two
        ratio fields.
        - Anti-procyclicality (EMIR RTS 153/2013 Art. 28(1)(b)): sigma_eff^2 puts 25% weight
          on the stressed variance, the largest EWMA variance ever seen for the market, so
          margin does not melt away in a calm spell after a storm.
        - A forecaster (FORECASTER_ROLE, a keeper job fitting GARCH(1,1) off chain) may push a
          variance that can only raise sigma_eff above the realized one, decaying linearly
          back to it over at most `max_forecast_duration`: a wrong or hostile forecaster can
          cost traders margin, never the pools' solvency.
        - Rate limit: one change per `min_interval`, and a new MM never exceeds the IM in
          force before the poke, so an account that met IM before a poke is never
          liquidatable right after it. Stale or duplicate rounds are refused.
@dev Holds the vault's RISK_ADMIN_ROLE next to the Configurator (granted through the timelock on a
     live network): like the Configurator it validates what it writes, and its code writes only
     im_ratio and mm_ratio of a listed market. Writing the word directly, not through the
     Configurator, saves a cold account, a role check and a struct round trip on every change.
"""

from interfaces import IMarginVault
from interfaces import IOracleAdapter

from snekmate.auth import access_control
from snekmate.utils import math

import constants
import packing

initializes: access_control

exports: (
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.getRoleAdmin,
)

# ---------------------------------------------------------------- constants

RISK_ADMIN_ROLE: public(constant(bytes32)) = keccak256("RISK_ADMIN_ROLE")
FORECASTER_ROLE: public(constant(bytes32)) = keccak256("FORECASTER_ROLE")

# EMIR Art. 28(1)(b): at least 25% weight on stressed observations
STRESS_WEIGHT: public(constant(uint256)) = 25 * 10**16
_WAD: constant(uint256) = constants.WAD

# Storage packing (why: a poke reads three words and writes two, instead of 18 slots). Ratios and
# multipliers are stored in units of 1e-12 (WAD / 1e6); `configure` refuses finer values rather than
# rounding them silently.
_UNIT: constant(uint256) = 10**6
# the EWMA saturates here (18.4 per second, a one-second sigma of 430%); `configure` makes sure a
# saturated estimate already asks for the cap, so saturation never lowers margin
_MAX_VARIANCE: constant(uint256) = constants.MASK_64
_MASK_24: constant(uint256) = 2**24 - 1
_MASK_40: constant(uint256) = 2**40 - 1
# hot config word: z u48 | im_multiple u48 | floor u40 | cap u40 | horizon u24 | tau u32 | min_interval u24
_C_MULTIPLE: constant(uint256) = 48
_C_FLOOR: constant(uint256) = 96
_C_CAP: constant(uint256) = 136
_C_HORIZON: constant(uint256) = 176
_C_TAU: constant(uint256) = 200
_C_INTERVAL: constant(uint256) = 232
# cold config word (first poke, forecasts): max_forecast_duration u32 | initial_variance u64
# round word: round_id u80 | updated_at u40 | last_change u40 | price u96 (WAD)
_R_UPDATED: constant(uint256) = 80
_R_CHANGE: constant(uint256) = 120
_R_PRICE: constant(uint256) = 160
# variance word: variance u64 | stressed u64 | forecast variance u64 | forecast end u40 | forecast duration u24
_V_STRESSED: constant(uint256) = 64
_V_FORECAST: constant(uint256) = 128
_V_END: constant(uint256) = 192
_V_DURATION: constant(uint256) = 232

# ---------------------------------------------------------------- types


struct RiskConfig:
    z: uint256  # WAD, e.g. 3.09 for a one-sided 99.9% quantile
    horizon: uint256  # seconds: oracle lag + keeper delay + auction duration
    tau: uint256  # seconds of the EWMA's time constant (RiskMetrics lambda 0.94/day: 1,396,000 s)
    im_multiple: uint256  # WAD, IM = im_multiple x MM, > 1
    floor: uint256  # WAD, lowest MM ratio
    cap: uint256  # WAD, highest MM ratio (cap x im_multiple < 1)
    min_interval: uint256  # seconds between two changes of the ratios
    max_forecast_duration: uint256  # seconds a forecast may last
    initial_variance: uint256  # WAD per second, the estimate before the first return


struct RiskState:
    round_id: uint256
    updated_at: uint256
    price: uint256  # WAD, of the last folded round
    variance: uint256  # EWMA of r^2 / dt, WAD per second
    stressed: uint256  # the largest `variance` seen
    last_change: uint256  # timestamp of the last ratio change


struct Forecast:
    variance: uint256  # WAD per second
    start: uint256
    end: uint256


# ---------------------------------------------------------------- storage

vault: public(immutable(IMarginVault))
oracle: public(immutable(IOracleAdapter))

_hot_config: HashMap[uint256, uint256]
_cold_config: HashMap[uint256, uint256]
_round_word: HashMap[uint256, uint256]
_variance_word: HashMap[uint256, uint256]

# ---------------------------------------------------------------- events


event RiskConfigured:
    market: indexed(uint256)
    z: uint256
    horizon: uint256
    tau: uint256
    im_multiple: uint256
    floor: uint256
    cap: uint256


event VolatilityUpdated:
    market: indexed(uint256)
    round_id: uint256
    log_return: int256
    variance: uint256
    effective_variance: uint256


event MarginRatiosSet:
    market: indexed(uint256)
    im_ratio: uint256
    mm_ratio: uint256
    target_mm_ratio: uint256  # before the rate limit


event ForecastPushed:
    market: indexed(uint256)
    forecaster: indexed(address)
    variance: uint256
    end: uint256


# ---------------------------------------------------------------- constructor


@deploy
def __init__(vault_: IMarginVault, oracle_: IOracleAdapter):
    """
    @param vault_ The vault whose ratios this contract writes (it must be granted the vault's
           RISK_ADMIN_ROLE, a timelocked operation on a live network).
    @param oracle_ The oracle adapter of the vault's markets.
    """
    access_control.__init__()
    vault = vault_
    oracle = oracle_
    access_control._grant_role(RISK_ADMIN_ROLE, msg.sender)


# ---------------------------------------------------------------- admin


@external
def configure(market: uint256, config: RiskConfig):
    """
    @notice Set a market's volatility-margin parameters (risk admin); resets nothing of its
            running estimate.
    @dev WAD fields (z, im_multiple, floor, cap) must be multiples of 1e-12 (1e6 wei).
    @param market The market id (must be listed in the vault).
    @param config The parameters (see RiskConfig).
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    packing._unpack_config(staticcall vault.market_config(market))  # "vault: unknown market"
    assert config.z > 0 and config.horizon > 0 and config.tau > 0, "risk: zero parameter"
    assert config.im_multiple > _WAD, "risk: im multiple <= 1"
    # a floor of at least 0.01% keeps IM = multiple x MM strictly above MM after rounding
    assert config.floor >= 10**14 and config.floor <= config.cap, "risk: bad floor"
    assert config.cap * config.im_multiple < _WAD * _WAD, "risk: cap x multiple >= 1"
    assert config.max_forecast_duration <= 30 * 86_400, "risk: forecast too long"
    assert (
        config.z % _UNIT == 0 and config.im_multiple % _UNIT == 0 and config.floor % _UNIT == 0
        and config.cap % _UNIT == 0
    ), "risk: finer than 1e-12"
    assert config.z // _UNIT <= constants.MASK_48 and config.im_multiple // _UNIT <= constants.MASK_48, (
        "risk: z or multiple too large"
    )
    assert config.horizon <= _MASK_24 and config.min_interval <= _MASK_24, "risk: interval too long"
    assert config.tau <= constants.MASK_32, "risk: tau too long"
    assert config.initial_variance <= _MAX_VARIANCE, "risk: variance too large"
    # a saturated EWMA must already ask for the cap
    assert self._target_mm(self._pack_hot(config), _MAX_VARIANCE) == config.cap, "risk: z too small"
    self._hot_config[market] = self._pack_hot(config)
    self._cold_config[market] = config.max_forecast_duration | (config.initial_variance << 32)
    log RiskConfigured(
        market=market, z=config.z, horizon=config.horizon, tau=config.tau, im_multiple=config.im_multiple,
        floor=config.floor, cap=config.cap,
    )


# ---------------------------------------------------------------- keepers


@external
def poke(market: uint256) -> bool:
    """
    @notice Fold the market's newest oracle round into its volatility estimate and push the
            resulting margin ratios into the vault (rate-limited). Anyone may call it.
    @dev Inside the rate limit the vault is not even read (a fold costs no cold account);
         the ratios in force are VaultLens.market's.
    @param market The market id.
    @return bool Whether this poke changed the vault's margin ratios.
    """
    hot: uint256 = self._hot_config[market]
    assert hot != 0, "risk: market not configured"
    rounds: uint256 = self._round_word[market]
    word: uint256 = self._variance_word[market]
    # one call: reverts on a stale, non-positive or out-of-bounds round
    price: uint256 = 0
    round_id: uint256 = 0
    updated_at: uint256 = 0
    price, round_id, updated_at = staticcall oracle.latest_round(market)
    last_updated: uint256 = (rounds >> _R_UPDATED) & _MASK_40
    assert updated_at > last_updated and round_id != rounds & constants.MASK_80, "risk: stale or duplicate round"
    assert price <= constants.MASK_96, "risk: price too large"
    last_price: uint256 = rounds >> _R_PRICE
    variance: uint256 = 0
    log_return: int256 = 0
    if last_price == 0:
        variance = self._cold_config[market] >> 32
    else:
        log_return = math._wad_ln(convert(price * _WAD // last_price, int256))
        tau: uint256 = (hot >> _C_TAU) & constants.MASK_32
        variance = self._ewma(word & constants.MASK_64, log_return, updated_at - last_updated, tau)
    stressed: uint256 = max((word >> _V_STRESSED) & constants.MASK_64, variance)
    word = variance | (stressed << _V_STRESSED) | ((word >> _V_FORECAST) << _V_FORECAST)
    effective: uint256 = self._effective_variance(word)
    log VolatilityUpdated(
        market=market, round_id=round_id, log_return=log_return, variance=variance, effective_variance=effective
    )
    last_change: uint256 = (rounds >> _R_CHANGE) & _MASK_40
    changed: bool = False
    if last_change == 0 or block.timestamp >= last_change + (hot >> _C_INTERVAL):
        changed = self._apply(market, hot, effective)
    if changed:
        last_change = block.timestamp
    self._round_word[market] = (
        round_id | (updated_at << _R_UPDATED) | (last_change << _R_CHANGE) | (price << _R_PRICE)
    )
    self._variance_word[market] = word
    return changed


@external
def push_forecast(market: uint256, variance: uint256, duration: uint256):
    """
    @notice A volatility forecast (variance per second, WAD) that raises margin above the
            realized estimate until it decays back over `duration`; applied by the next poke.
    @param market The market id.
    @param variance The forecast variance per second (WAD), at most 2^64 - 1.
    @param duration Seconds over which it decays to the realized estimate.
    """
    access_control._check_role(FORECASTER_ROLE, msg.sender)
    assert self._hot_config[market] != 0, "risk: market not configured"
    assert duration > 0 and duration <= self._cold_config[market] & constants.MASK_32, "risk: forecast duration"
    assert variance <= _MAX_VARIANCE, "risk: variance too large"
    word: uint256 = self._variance_word[market] & (2**_V_FORECAST - 1)
    self._variance_word[market] = (
        word | (variance << _V_FORECAST) | ((block.timestamp + duration) << _V_END) | (duration << _V_DURATION)
    )
    log ForecastPushed(market=market, forecaster=msg.sender, variance=variance, end=block.timestamp + duration)


# ---------------------------------------------------------------- views


@external
@view
def risk_config(market: uint256) -> RiskConfig:
    """
    @notice A market's volatility-margin parameters (all zero when not configured).
    @param market The market id.
    @return RiskConfig The parameters, in the units `configure` takes.
    """
    hot: uint256 = self._hot_config[market]
    cold: uint256 = self._cold_config[market]
    return RiskConfig(
        z=(hot & constants.MASK_48) * _UNIT,
        horizon=(hot >> _C_HORIZON) & _MASK_24,
        tau=(hot >> _C_TAU) & constants.MASK_32,
        im_multiple=((hot >> _C_MULTIPLE) & constants.MASK_48) * _UNIT,
        floor=((hot >> _C_FLOOR) & _MASK_40) * _UNIT,
        cap=((hot >> _C_CAP) & _MASK_40) * _UNIT,
        min_interval=hot >> _C_INTERVAL,
        max_forecast_duration=cold & constants.MASK_32,
        initial_variance=cold >> 32,
    )


@external
@view
def risk_state(market: uint256) -> RiskState:
    """
    @notice A market's running estimate: the last folded round and the EWMA variances.
    @param market The market id.
    @return RiskState round_id, updated_at, price (WAD), variance and stressed (WAD per second),
            last_change (timestamp of the last ratio change).
    """
    rounds: uint256 = self._round_word[market]
    word: uint256 = self._variance_word[market]
    return RiskState(
        round_id=rounds & constants.MASK_80,
        updated_at=(rounds >> _R_UPDATED) & _MASK_40,
        price=rounds >> _R_PRICE,
        variance=word & constants.MASK_64,
        stressed=(word >> _V_STRESSED) & constants.MASK_64,
        last_change=(rounds >> _R_CHANGE) & _MASK_40,
    )


@external
@view
def forecast(market: uint256) -> Forecast:
    """
    @notice The last forecast pushed for a market (zero when none).
    @param market The market id.
    @return Forecast variance (WAD per second), start and end (timestamps).
    """
    word: uint256 = self._variance_word[market]
    end: uint256 = (word >> _V_END) & _MASK_40
    return Forecast(
        variance=(word >> _V_FORECAST) & constants.MASK_64, start=end - (word >> _V_DURATION), end=end
    )


@external
@view
def effective_variance(market: uint256) -> uint256:
    """
    @notice The variance per second (WAD) margin is computed from now: realized EWMA with 25%
            weight on the stressed variance, raised by a live forecast.
    @param market The market id.
    @return uint256 The effective variance per second (WAD).
    """
    return self._effective_variance(self._variance_word[market])


@external
@view
def target_mm_ratio(market: uint256) -> uint256:
    """
    @notice The MM ratio (WAD) the current estimate asks for, before the rate limit.
    @param market The market id.
    @return uint256 clamp(z x sqrt(variance x horizon), floor, cap).
    """
    return self._target_mm(self._hot_config[market], self._effective_variance(self._variance_word[market]))


# ---------------------------------------------------------------- internal


@internal
@pure
def _pack_hot(config: RiskConfig) -> uint256:
    return (
        config.z // _UNIT
        | ((config.im_multiple // _UNIT) << _C_MULTIPLE)
        | ((config.floor // _UNIT) << _C_FLOOR)
        | ((config.cap // _UNIT) << _C_CAP)
        | (config.horizon << _C_HORIZON)
        | (config.tau << _C_TAU)
        | (config.min_interval << _C_INTERVAL)
    )


@internal
@pure
def _ewma(variance: uint256, log_return: int256, dt: uint256, tau: uint256) -> uint256:
    # alpha = 1 - e^(-dt/tau); the observation r^2/dt is a variance per second
    alpha: uint256 = _WAD - convert(math._wad_exp(-convert(dt * _WAD // tau, int256)), uint256)
    r2: uint256 = convert(log_return * log_return, uint256) // _WAD
    return min(((_WAD - alpha) * variance + alpha * (r2 // dt)) // _WAD, _MAX_VARIANCE)


@internal
@view
def _effective_variance(word: uint256) -> uint256:
    variance: uint256 = word & constants.MASK_64
    stressed: uint256 = (word >> _V_STRESSED) & constants.MASK_64
    blended: uint256 = ((_WAD - STRESS_WEIGHT) * variance + STRESS_WEIGHT * stressed) // _WAD
    forecast: uint256 = (word >> _V_FORECAST) & constants.MASK_64
    end: uint256 = (word >> _V_END) & _MASK_40
    if block.timestamp >= end or forecast <= blended:
        return blended
    # linear decay from the forecast at `start` to the realized estimate at `end`
    return blended + (forecast - blended) * (end - block.timestamp) // (word >> _V_DURATION)


@internal
@pure
def _target_mm(hot: uint256, variance: uint256) -> uint256:
    sigma_h: uint256 = isqrt(variance * ((hot >> _C_HORIZON) & _MASK_24) * _WAD)  # WAD
    z: uint256 = (hot & constants.MASK_48) * _UNIT
    lowest: uint256 = ((hot >> _C_FLOOR) & _MASK_40) * _UNIT
    cap: uint256 = ((hot >> _C_CAP) & _MASK_40) * _UNIT
    return min(max(z * sigma_h // _WAD, lowest), cap)


@internal
def _apply(market: uint256, hot: uint256, variance: uint256) -> bool:
    config: uint256 = staticcall vault.market_config(market)
    old_im: uint256 = (config >> packing.CONFIG_IM) & constants.MASK_64
    target: uint256 = self._target_mm(hot, variance)
    # an account meeting the IM in force now must not be liquidatable after: new MM <= old IM
    mm: uint256 = min(target, old_im)
    im: uint256 = mm * (((hot >> _C_MULTIPLE) & constants.MASK_48) * _UNIT) // _WAD
    if mm == (config >> packing.CONFIG_MM) & constants.MASK_64 and im == old_im:
        return False
    # only the two ratio fields change; the vault checks nothing else in a config word it already lists
    extcall vault.set_market_config(market, packing._with_ratios(config, im, mm))
    log MarginRatiosSet(market=market, im_ratio=im, mm_ratio=mm, target_mm_ratio=target)
    return True
