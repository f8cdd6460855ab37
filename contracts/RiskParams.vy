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
        into the vault through the Configurator (the packed config word stays in the vault:
        a fill pays no extra CALL).
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
@dev Holds the Configurator's RISK_ADMIN_ROLE (granted through the timelock on a live network);
     writes only im_ratio and mm_ratio, keeping every other parameter of the market.
"""

from interfaces import IAggregatorV3
from interfaces import IConfigurator
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

configurator: public(immutable(IConfigurator))
vault: public(immutable(IMarginVault))
oracle: public(immutable(IOracleAdapter))

risk_config: public(HashMap[uint256, RiskConfig])
risk_state: public(HashMap[uint256, RiskState])
forecast: public(HashMap[uint256, Forecast])

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
def __init__(configurator_: IConfigurator, oracle_: IOracleAdapter):
    """
    @param configurator_ The Configurator whose RISK_ADMIN_ROLE this contract will hold.
    @param oracle_ The oracle adapter of the vault's markets.
    """
    access_control.__init__()
    configurator = configurator_
    vault = IMarginVault(staticcall configurator_.vault())
    oracle = oracle_
    access_control._grant_role(RISK_ADMIN_ROLE, msg.sender)


# ---------------------------------------------------------------- admin


@external
def configure(market: uint256, config: RiskConfig):
    """
    @notice Set a market's volatility-margin parameters (risk admin); resets nothing of its
            running estimate.
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
    self.risk_config[market] = config
    log RiskConfigured(
        market=market, z=config.z, horizon=config.horizon, tau=config.tau, im_multiple=config.im_multiple,
        floor=config.floor, cap=config.cap,
    )


# ---------------------------------------------------------------- keepers


@external
def poke(market: uint256) -> (uint256, uint256):
    """
    @notice Fold the market's newest oracle round into its volatility estimate and push the
            resulting margin ratios into the vault (rate-limited). Anyone may call it.
    @param market The market id.
    @return (uint256, uint256) The im and mm ratios in force after the call (WAD).
    """
    config: RiskConfig = self.risk_config[market]
    assert config.tau != 0, "risk: market not configured"
    state: RiskState = self.risk_state[market]
    round_id: uint256 = 0
    updated_at: uint256 = 0
    round_id, updated_at = self._round(market)
    assert updated_at > state.updated_at and round_id != state.round_id, "risk: stale or duplicate round"
    price: uint256 = staticcall oracle.price(market)  # reverts on a stale or out-of-bounds round
    log_return: int256 = 0
    if state.price == 0:
        state.variance = config.initial_variance
    else:
        log_return = math._wad_ln(convert(price * _WAD // state.price, int256))
        state.variance = self._ewma(state.variance, log_return, updated_at - state.updated_at, config.tau)
    state.stressed = max(state.stressed, state.variance)
    state.round_id = round_id
    state.updated_at = updated_at
    state.price = price
    effective: uint256 = self._effective_variance(market, state)
    log VolatilityUpdated(
        market=market, round_id=round_id, log_return=log_return, variance=state.variance,
        effective_variance=effective,
    )
    im: uint256 = 0
    mm: uint256 = 0
    changed: bool = False
    im, mm, changed = self._apply(market, config, state.last_change, effective)
    if changed:
        state.last_change = block.timestamp
    self.risk_state[market] = state
    return im, mm


@external
def push_forecast(market: uint256, variance: uint256, duration: uint256):
    """
    @notice A volatility forecast (variance per second, WAD) that raises margin above the
            realized estimate until it decays back over `duration`; applied by the next poke.
    @param market The market id.
    @param variance The forecast variance per second (WAD).
    @param duration Seconds over which it decays to the realized estimate.
    """
    access_control._check_role(FORECASTER_ROLE, msg.sender)
    config: RiskConfig = self.risk_config[market]
    assert config.tau != 0, "risk: market not configured"
    assert duration > 0 and duration <= config.max_forecast_duration, "risk: forecast duration"
    self.forecast[market] = Forecast(variance=variance, start=block.timestamp, end=block.timestamp + duration)
    log ForecastPushed(market=market, forecaster=msg.sender, variance=variance, end=block.timestamp + duration)


# ---------------------------------------------------------------- views


@external
@view
def effective_variance(market: uint256) -> uint256:
    """
    @notice The variance per second (WAD) margin is computed from now: realized EWMA with 25%
            weight on the stressed variance, raised by a live forecast.
    @param market The market id.
    @return uint256 The effective variance per second (WAD).
    """
    return self._effective_variance(market, self.risk_state[market])


@external
@view
def target_mm_ratio(market: uint256) -> uint256:
    """
    @notice The MM ratio (WAD) the current estimate asks for, before the rate limit.
    @param market The market id.
    @return uint256 clamp(z x sqrt(variance x horizon), floor, cap).
    """
    return self._target_mm(self.risk_config[market], self._effective_variance(market, self.risk_state[market]))


# ---------------------------------------------------------------- internal


@internal
@view
def _round(market: uint256) -> (uint256, uint256):
    aggregator: address = empty(address)
    heartbeat: uint256 = 0
    decimals: uint256 = 0
    low: uint256 = 0
    high: uint256 = 0
    aggregator, heartbeat, decimals, low, high = staticcall oracle.feed_of(market)
    round_id: uint80 = 0
    answer: int256 = 0
    started: uint256 = 0
    updated_at: uint256 = 0
    answered: uint80 = 0
    round_id, answer, started, updated_at, answered = staticcall IAggregatorV3(aggregator).latestRoundData()
    return convert(round_id, uint256), updated_at


@internal
@pure
def _ewma(variance: uint256, log_return: int256, dt: uint256, tau: uint256) -> uint256:
    # alpha = 1 - e^(-dt/tau); the observation r^2/dt is a variance per second
    alpha: uint256 = _WAD - convert(math._wad_exp(-convert(dt * _WAD // tau, int256)), uint256)
    r2: uint256 = convert(log_return * log_return, uint256) // _WAD
    return ((_WAD - alpha) * variance + alpha * (r2 // dt)) // _WAD


@internal
@view
def _effective_variance(market: uint256, state: RiskState) -> uint256:
    blended: uint256 = ((_WAD - STRESS_WEIGHT) * state.variance + STRESS_WEIGHT * state.stressed) // _WAD
    f: Forecast = self.forecast[market]
    if block.timestamp >= f.end or f.variance <= blended:
        return blended
    # linear decay from the forecast at `start` to the realized estimate at `end`
    return blended + (f.variance - blended) * (f.end - block.timestamp) // (f.end - f.start)


@internal
@pure
def _target_mm(config: RiskConfig, variance: uint256) -> uint256:
    sigma_h: uint256 = isqrt(variance * config.horizon * _WAD)  # WAD
    return min(max(config.z * sigma_h // _WAD, config.floor), config.cap)


@internal
def _apply(market: uint256, config: RiskConfig, last_change: uint256, variance: uint256) -> (uint256, uint256, bool):
    params: IMarginVault.MarketParams = packing._unpack_config(staticcall vault.market_config(market))
    target: uint256 = self._target_mm(config, variance)
    if last_change != 0 and block.timestamp < last_change + config.min_interval:
        return params.im_ratio, params.mm_ratio, False
    # an account meeting the IM in force now must not be liquidatable after: new MM <= old IM
    mm: uint256 = min(target, params.im_ratio)
    im: uint256 = mm * config.im_multiple // _WAD
    if mm == params.mm_ratio and im == params.im_ratio:
        return im, mm, False
    params.mm_ratio = mm
    params.im_ratio = im
    extcall configurator.set_market_params(market, params)
    log MarginRatiosSet(market=market, im_ratio=im, mm_ratio=mm, target_mm_ratio=target)
    return im, mm, True
