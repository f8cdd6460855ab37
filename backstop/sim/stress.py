"""Stress simulator: drive a whole deployment through a price path and measure who pays.

One run (`run`) = a fresh system on the current chain (deploy_system), LPs in the segment
pools and the backstop (one LP leaves mid-path), traders at a leverage distribution against
one market maker, a keeper `latency` seconds behind every oracle update, optional adversaries
from backstop.sim.agents; the path (backstop.sim.paths) drives the mock feeds. At the end
the keeper settles what is left, everyone closes at the oracle price and tries to withdraw in
full, and the conservation invariants (backstop.sim.model.check_invariants) are checked.
An auction nobody takes goes to the backstop's liquidator of last resort (RunSpec.takeover; False
deploys none: the ADL-only baseline), whose inventory the keeper unwinds after each pass
(backstop.sim.takeover_compare compares the two).

`sweep` runs the grid gap x keeper latency on Dask: every worker process starts its own
Anvil once (ape's foundry provider, a random free port) and restores a snapshot of the empty
chain before each run, so runs never see each other and never pay for a new Anvil.
"""

from __future__ import annotations

import itertools
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from os import PathLike
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from ape import accounts, chain
from ape.api import AccountAPI
from ape.exceptions import ContractLogicError

from backstop.client.actors import fund, set_price, trade
from backstop.client.deploy import System, deploy_risk_params, deploy_system
from backstop.core.config import SystemConfig
from backstop.core.volatility import VolMarginParams
from backstop.core.units import WAD, quote, wad
from backstop.keeper import Keeper, Report, liquidate_all, scan, unwind_inventory
from backstop.sim.agents import DeficitDodger, Env, WhaleSelfLiquidator
from backstop.sim.crowd import MarginAwareCrowd
from backstop.sim.forecast import FastEwmaForecaster, grant_forecaster
from backstop.sim.model import check_invariants
from backstop.sim.paths import PricePath, gap

# Short LP cooldown so an LP can enter and leave within one simulated crash (the default is 7 days).
POOL_PARAMS = {"cooldown": 60, "redeem_window": 3600}


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run; a sweep is a list of these."""

    path: PricePath
    latency: int = 0  # seconds from an oracle update to the keeper's pass
    seed: int = 0
    n_traders: int = 6
    trader_collateral: int = 10_000  # whole quote units each
    leverage: tuple[float, float] = (2.0, 9.0)  # uniform between (IM 10% caps it at 10x)
    long_share: float = 0.75  # fraction of traders long (a crash hurts them)
    pool_deposit: int = 20_000  # per segment pool
    backstop_deposit: int = 20_000
    maker_collateral: int = 2_000_000
    keeper_collateral: int = 50_000
    adversaries: tuple[str, ...] = ()  # "whale", "dodger"
    margin_model: str = "default"  # a MarginModel of MARGIN_MODELS
    margin_scale: float = 1.0  # the model's calibration knob (MarginModel.config): 1 = its stock parameters
    # "fixed": open once at a leverage drawn from `leverage`; "margin": margin-aware traders (MarginAwareCrowd)
    traders: str = "fixed"
    im_share: tuple[float, float] = (0.2, 0.9)  # "margin" traders: share of the IM limit each one uses
    collateral_sigma: float = 0.0  # lognormal spread of trader collateral around trader_collateral (0: equal)
    rebalance_every: int = 1  # "margin" traders act every this many oracle updates
    keeper: str = "sequential"  # "sequential": liquidate_all per pass; "bot": backstop.keeper.Keeper (batched)
    # the backstop's liquidator of last resort (BackstopLiquidator) is deployed; False: the ADL-only baseline
    takeover: bool = True
    # after its liquidations the keeper flags every liquidatable account it could not take (a flag needs no
    # margin): the auction clock starts, so a position beyond its margin reaches the auction's end (takeover/ADL)
    flagger: bool = False
    # seconds of keeper passes (one per path.dt, at the last prices) after the path while an account is
    # liquidatable or the liquidator holds inventory: the time its inventory takes to unwind (0: none)
    aftermath: int = 0
    label: str = ""


UNWIND_ROUNDS = 4  # chunks of the liquidator's inventory the keeper takes (and hedges) per segment per pass
MAX_BOT_RUNS = 24  # Keeper runs per pass: each closes a close-factor share of every liquidatable position


@dataclass(frozen=True)
class MarginModel:
    """How a deployment sets IM and MM, with one knob, `scale`, that the equal-average-margin calibration turns
    (backstop.sim.margin_compare): static and size models scale the MarketSpec ratios, RiskParams models scale
    `z` and `floor` together (the whole target curve below the cap). Calling the model gives its SystemConfig at
    scale 1 (what `MARGIN_MODELS[name]()` always returned)."""

    name: str
    risk: bool = False  # RiskParams drives the ratios; the keeper pokes every market before each pass
    knee: int = 0  # MarketSpec.size_knee of every market: margin doubles at this notional (x 10,000 quote)
    forecaster: bool = False  # a forecaster job (backstop.sim.forecast) pushes before every poke
    min_interval: int | None = None  # RiskParams' rate limit; None: VolMarginParams' default (1 h)
    about: str = ""

    def __call__(self) -> SystemConfig:
        return self.config()

    def config(self, scale: float = 1.0, takeover: bool = True) -> SystemConfig:
        """`takeover=False`: no liquidator of last resort (ADL follows every unsold auction)."""
        pools = dict(POOL_PARAMS) if takeover else {**POOL_PARAMS, "takeover": False}
        base = SystemConfig(pools=pools, vol_margin=self.risk)
        if self.risk:
            return base
        markets = tuple(replace(m, im_ratio=_scaled(m.im_ratio, scale), mm_ratio=_scaled(m.mm_ratio, scale),
                                size_knee=self.knee) for m in base.markets)
        return replace(base, markets=markets)

    def risk_params(self, scale: float = 1.0) -> VolMarginParams:
        stock = VolMarginParams()
        interval = stock.min_interval if self.min_interval is None else self.min_interval
        return replace(stock, z=stock.z * scale, floor=stock.floor * scale, min_interval=interval)

    def deploy(self, deployer: AccountAPI, scale: float = 1.0, takeover: bool = True) -> System:
        """A fresh system under this model (RiskParams configured with `risk_params(scale)` if it has it);
        `takeover=False` deploys no liquidator of last resort."""
        if not self.risk:
            return deploy_system(deployer, self.config(scale, takeover))
        system = deploy_system(deployer, replace(self.config(scale, takeover), vol_margin=False))
        params = self.risk_params(scale)
        system.risk = deploy_risk_params(system, deployer, {label: params for label in system.markets})
        return system


def _scaled(ratio: Decimal, scale: float) -> Decimal:
    return Decimal(str(round(float(ratio) * scale, 12)))


# The margin-model axis of a sweep (docs/stress.md, "Margin models"): "static" is "default" under the name the
# comparison uses; "vol" keeps RiskParams' stock parameters, "ewma" and "predictive" use a 10-minute rate limit.
SIM_MIN_INTERVAL = 600  # s: the crash replays compress days into hours, so the 1 h stock limit scales down too
SIZE_KNEE = 10  # x 10,000 quote: a 100,000 position posts twice the base ratios
MARGIN_MODELS: dict[str, MarginModel] = {
    "default": MarginModel("default", about="fixed ratios, 10% IM / 5% MM"),
    "static": MarginModel("static", about="fixed ratios (the default), scaled"),
    "vol": MarginModel("vol", risk=True, about="RiskParams realized EWMA, stock parameters"),
    "ewma": MarginModel("ewma", risk=True, min_interval=SIM_MIN_INTERVAL,
                        about="RiskParams realized EWMA, 10 min rate limit"),
    "predictive": MarginModel("predictive", risk=True, forecaster=True, min_interval=SIM_MIN_INTERVAL,
                              about="ewma + a fast-EWMA forecaster pushing before every poke"),
    "size": MarginModel("size", knee=SIZE_KNEE, about="fixed ratios x (1 + notional / 100,000)"),
}


@dataclass
class Cast:
    """The accounts of one run."""

    deployer: AccountAPI
    maker: AccountAPI
    keeper: AccountAPI
    lps: list[AccountAPI]
    traders: list[AccountAPI]
    extra: list[AccountAPI] = field(default_factory=list)
    forecaster: AccountAPI | None = None  # holds RiskParams' FORECASTER_ROLE in a "predictive" run

    @property
    def margin_accounts(self) -> list[AccountAPI]:
        return [self.maker, self.keeper, *self.traders, *self.extra]

    @property
    def everyone(self) -> list[AccountAPI]:
        return [self.deployer, *self.lps, *self.margin_accounts]


@dataclass
class Result:
    """One row of reports/stress.csv, plus the NAV series for the plots."""

    label: str
    path: str
    gap: float
    latency: int
    seed: int
    margin_model: str
    margin_scale: float = 1.0
    seconds: float = 0.0
    pool_nav_start: int = 0
    pool_nav_min: int = 0
    pool_nav_end: int = 0
    pool_drawdown: float = 0.0  # worst loss / start of the segment pools + backstop (LP exits added back)
    bad_debt: int = 0  # new deficits of BadDebtCovered events (a repeated settle counts only what grew)
    bad_debt_paid: int = 0  # Σ BadDebtCovered.paid (pool + backstop)
    bad_debt_unpaid: int = 0  # what the pools left at each account's last settle (ADL's share)
    backstop_draws: int = 0  # Σ Draw.paid
    adl_events: int = 0
    adl_socialized: int = 0  # Σ Deleveraged.socialized_loss
    liquidations: int = 0
    keeper_profit: int = 0  # what the keeper withdrew minus what it deposited
    winners: int = 0
    winners_unpaid: int = 0  # collateral winners could not withdraw
    pools_could_pay: bool = True  # the pools paid every deficit: no ADL, nothing left unpaid
    lp_exit_ok: bool = False
    withdraw_wait: int = 0  # seconds the winners waited for a segment's withdrawal gate to lift
    invariant_errors: int = 0
    first_error: str = ""
    adversary_pnl: int = 0  # Σ P&L of the adversaries (backstop.sim.agents accounting), quote units
    # equal-average-margin measure: Σ dt x IM and Σ dt x notional over the traders' open positions, read from the
    # chain (VaultLens.health_of) at the end of every oracle interval; avg_margin is their ratio
    im_seconds: float = 0.0
    notional_seconds: float = 0.0
    avg_margin: float = 0.0
    forecasts: int = 0  # forecasts pushed ("predictive")
    trader_fills: int = 0  # fills the margin-aware traders made after their first open
    trader_refused: int = 0  # increases the vault refused ("vault: below initial margin")
    # the liquidator of last resort (backstop.sim.takeover_compare)
    takeover: bool = True  # the run's deployment has one (False: the ADL-only baseline)
    takeovers: int = 0  # TakenOver events
    takeover_notional: int = 0  # Σ size x price of TakenOver, quote units
    takeover_refused: int = 0  # takeovers the liquidator's caps refused (sequential keeper's reverts)
    takeover_pnl: int = 0  # to the backstop: Σ returned + equity still in its accounts - Σ margin lent
    inventory_peak: int = 0  # the liquidator's largest notional at a sample, quote units
    unwind_seconds: int = 0  # first TakenOver -> inventory back to 0 after the last one (lower bound if not)
    unwound: bool = True  # the inventory was back to 0 before the run's end (none taken: True)
    winners_hit: int = 0  # distinct counterparties of Deleveraged events
    adl_notional: int = 0  # Σ size x price of Deleveraged (winners' positions closed by ADL; a flat account's
    # residual ADL counts the piece it round-trips), quote units
    backstop_drawdown: float = 0.0  # worst fall of the backstop's assets per share from its running peak
    aftermath_seconds: int = 0  # keeper passes after the path (RunSpec.aftermath)
    failed: str = ""  # the exception that stopped the run early (its other figures are then empty)
    nav: list[tuple[int, int, int, int]] = field(default_factory=list)  # (t, majors, alts, backstop)
    # (t, the liquidator's notional, the backstop's assets per share) after every oracle update and keeper pass
    inventory: list[tuple[int, int, int]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("nav")
        out.pop("inventory")
        return out


# ---------------------------------------------------------------- chain per worker

_chain: dict[str, Any] = {}


def connect() -> None:
    """Start (once per process) ape's foundry provider on a random free port, freeze the
    block clock and snapshot the empty chain, so every run starts from the same state."""
    if "snapshot" in _chain:
        return
    from ape import networks
    from ape.logging import logger

    from backstop.client.speed import disable_post_transaction_trace

    logger.set_level("WARNING")  # no "Contract deployed" line per contract per run
    disable_post_transaction_trace()
    quiet_reverts()
    context = networks.ethereum.local.use_provider("foundry")
    with _signals_off_main_thread():
        context.__enter__()
    _chain["context"] = context
    freeze_clock()
    _chain["snapshot"] = chain.snapshot()


def disconnect() -> bool:
    """Stop this process's Anvil (sweep calls it on every worker before closing the cluster:
    a worker killed by its nanny would otherwise leave its Anvil behind)."""
    context = _chain.pop("context", None)
    _chain.pop("snapshot", None)
    if context is None:
        return False
    context.__exit__(None, None, None)
    return True


@contextmanager
def _signals_off_main_thread() -> Iterator[None]:
    """ape installs SIGINT/SIGTERM handlers when it starts Anvil, which Python only allows on the
    main thread; a Dask task runs on a worker thread. Skip them there (the process's atexit
    still stops Anvil, and `disconnect` does it explicitly)."""
    import ape.api.providers as providers

    original = providers.signal

    def guarded(signum: int, handler: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            return original(signum, handler)
        return None

    providers.signal = guarded
    try:
        yield
    finally:
        providers.signal = original


def quiet_reverts() -> None:
    """ape-foundry prints (and first fetches, with debug_traceTransaction) the call trace of every
    reverted transaction, and ape maps the revert onto the Vyper source for its Python traceback
    (ape_vyper's trace_source: about 15 s per revert of a LiquidationEngine call on this machine);
    a keeper losing a race or lacking the margin for a position is normal here, so a sweep worker
    skips both (the revert message is kept)."""
    import ape.exceptions as exceptions
    import ape_ethereum.trace as trace

    trace.Trace.show = lambda self, *args, **kwargs: None
    exceptions._get_ape_traceback_from_tx = lambda txn: None


def freeze_clock() -> None:
    """Blocks keep the previous timestamp unless a run moves time (the test chain does the same)."""
    chain.provider.make_request("anvil_setBlockTimestampInterval", [0])


def fresh_chain() -> None:
    """Back to the empty chain of this worker (Anvil drops a snapshot once restored: take a new one)."""
    chain.restore(_chain["snapshot"])
    _chain["snapshot"] = chain.snapshot()


def run_in_worker(spec: RunSpec) -> Result:
    """The Dask task: one run on this worker's own Anvil."""
    connect()
    fresh_chain()
    try:
        return run(spec)
    except Exception as err:  # one broken run must not cost the sweep: it shows up as a failed row
        return failed_result(spec, err)


def failed_result(spec: RunSpec, err: Exception | None) -> Result:
    """The identifying columns of `spec`'s row, marked as failed with `err`."""
    path = spec.path
    model = ("" if spec.margin_model == "default" else f"/{spec.margin_model}") + (
        "" if spec.keeper == "sequential" else f"/{spec.keeper}")
    model += "" if spec.takeover else "/adl-only"
    return Result(label=spec.label or f"{path.name}/lat{spec.latency}{model}", path=path.name,
                  gap=path.gap if path.gap is not None else round(path.worst_step, 4), latency=spec.latency,
                  seed=spec.seed, margin_model=spec.margin_model, margin_scale=spec.margin_scale,
                  takeover=spec.takeover, failed=f"{type(err).__name__}: {err}"[:300])


# ---------------------------------------------------------------- one run


def make_cast(spec: RunSpec) -> Cast:
    """Test accounts 0-3 for the roles, generated (and gas-funded) accounts for the crowd."""
    test = accounts.test_accounts
    crowd = [_fresh_account() for _ in range(spec.n_traders + 3 + 2 * len(spec.adversaries))]
    return Cast(deployer=test[0], maker=test[1], keeper=test[2], lps=[test[3], crowd.pop()], forecaster=crowd.pop(),
                traders=crowd[:spec.n_traders], extra=crowd[spec.n_traders:])


def _fresh_account() -> AccountAPI:
    account = accounts.test_accounts.generate_test_account()
    chain.provider.set_balance(account.address, 10**20)
    return account


def run(spec: RunSpec, system: System | None = None, cast: Cast | None = None) -> Result:
    """One stress run on the connected chain. `system`/`cast` default to a fresh deployment."""
    started = time.perf_counter()
    cast = cast or make_cast(spec)
    system = system or MARGIN_MODELS[spec.margin_model].deploy(cast.deployer, spec.margin_scale, spec.takeover)
    _keep_alive.append(system)
    sim = Sim(spec, system, cast)
    sim.setup()
    sim.drive()
    sim.settle()
    result = sim.result()
    result.seconds = round(time.perf_counter() - started, 2)
    return result


_keep_alive: list[System] = []  # check_invariants caches readers by id(system): never let an id be reused


class Sim:
    """State of one run: the steps are small methods called in order by `run`."""

    def __init__(self, spec: RunSpec, system: System, cast: Cast):
        self.spec, self.system, self.cast = spec, system, cast
        self.rng = np.random.default_rng(spec.seed)
        self.start_block = int(chain.blocks.head.number) + 1
        self.t0 = int(chain.blocks.head.timestamp) + 1
        self.base = {label: int(system.oracle.price(m.id)) for label, m in system.markets.items()}
        self.deposited: dict[str, int] = {}
        self.nav: list[tuple[int, int, int, int]] = []
        self.losses: list[int] = []  # pools' loss so far, net of LP exits
        self.leaver_shares = 0
        self.lp_exit_ok = False
        self.lp_outflow = 0
        self.withdraw_wait = 0
        self.adversaries: list[Any] = []
        self.pool_start = 0
        self.model = MARGIN_MODELS.get(spec.margin_model, MARGIN_MODELS["default"])
        self.crowd: MarginAwareCrowd | None = None
        self.forecaster: FastEwmaForecaster | None = None
        self.im_seconds = 0.0
        self.notional_seconds = 0.0
        self.inventory: list[tuple[int, int, int]] = []  # (t, liquidator notional, backstop assets per share)
        self.refused = 0  # takeovers refused by the liquidator's caps (sequential keeper reports)
        self.aftermath_seconds = 0
        self.forced_at: int | None = None  # when the run's end sold what the liquidator still held

    def usd(self, amount: float) -> int:
        return quote(amount, self.system.decimals)

    # -- setup ----------------------------------------------------------------

    def setup(self) -> None:
        self.first_block = int(chain.blocks.head.number)
        self.bot: Keeper | None = None
        chain.pending_timestamp = self.t0
        self.fund_pools()
        self.fund(self.cast.maker, self.spec.maker_collateral)
        self.fund(self.cast.keeper, self.spec.keeper_collateral)
        self.start_margin_model()
        self.open_positions()
        self.start_adversaries()
        self.pool_start = sum(self.pool_nav())
        self.record_nav()

    def fund_pools(self) -> None:
        """Both LPs deposit in every segment pool and the backstop; the second one leaves mid-path."""
        for lp in self.cast.lps:
            for pool, amount in self.pool_targets():
                self.system.token.mint(lp, amount, sender=lp)
                self.system.token.approve(pool, amount, sender=lp)
                pool.deposit(amount, lp, sender=lp)

    def pool_targets(self) -> list[tuple[Any, int]]:
        pools = [(p, self.usd(self.spec.pool_deposit) // 2) for p in self.system.pools.values()]
        return pools + [(self.system.backstop, self.usd(self.spec.backstop_deposit) // 2)]

    def fund(self, account: AccountAPI, amount: float, segments: Iterable[int] | None = None) -> None:
        for segment in segments if segments is not None else self.system.segments.values():
            fund(self.system, account, segment, self.usd(amount))
            self.deposited[account.address] = self.deposited.get(account.address, 0) + self.usd(amount)

    def start_margin_model(self) -> None:
        """RiskParams models: a first poke puts the model's ratios in force before anyone opens, and a
        "predictive" run gets its forecaster (FORECASTER_ROLE granted by the deployer)."""
        if self.system.risk is None:
            return
        if self.model.forecaster and self.cast.forecaster is not None:
            grant_forecaster(self.system, self.cast.deployer, self.cast.forecaster)
            self.forecaster = FastEwmaForecaster(self.system, self.cast.forecaster)
            self.forecaster.step()  # its first look at every feed: the prior, nothing to push yet
        self.poke_markets()

    def poke_markets(self) -> None:
        for market in self.system.markets.values():
            try:
                self.system.risk.poke(market.id, sender=self.cast.keeper)
            except ContractLogicError:
                pass  # no new round since the last poke, or a stale feed

    def open_positions(self) -> None:
        """Each trader: one segment, one market, a leverage drawn from spec.leverage, long or short
        (spec.traders == "margin": a MarginAwareCrowd, sized to the IM in force instead)."""
        if self.spec.traders == "margin":
            self.open_margin_aware()
            return
        labels = list(self.system.markets)
        low, high = self.spec.leverage
        for trader in self.cast.traders:
            label = labels[int(self.rng.integers(len(labels)))]
            market = self.system.markets[label]
            self.fund(trader, self.spec.trader_collateral, [market.segment])
            leverage = float(self.rng.uniform(low, high))
            side = 1 if self.rng.random() < self.spec.long_share else -1
            notional = self.spec.trader_collateral * leverage
            size = side * int(notional * WAD * WAD // self.base[label])
            trade(self.system, trader, self.cast.maker, market.id, size, self.base[label])

    def open_margin_aware(self) -> None:
        spec = self.spec
        self.crowd = MarginAwareCrowd.draw(self.system, self.cast.maker, self.cast.traders, self.rng,
                                           collateral=spec.trader_collateral, sigma=spec.collateral_sigma,
                                           im_share=spec.im_share, long_share=spec.long_share)
        for plan in self.crowd.plans:
            self.fund(plan.account, plan.collateral, [self.system.markets[plan.label].segment])
        self.crowd.act()
        self.crowd.fills = 0  # count only the fills after the first open

    def start_adversaries(self) -> None:
        env = Env(self.system, self.cast.deployer, keepers=[self.cast.keeper], counterparties=[self.cast.maker])
        extra = list(self.cast.extra)
        for name in self.spec.adversaries:
            a, b = extra.pop(), extra.pop()
            if name == "whale":
                whale = WhaleSelfLiquidator(env, a, b, market="ETH-PERP", size=wad(20), entry=self.base["ETH-PERP"],
                                            collateral=self.usd(7_000), liquidator_collateral=self.usd(20_000))
                whale.begin()
                whale.open_and_strip()
                self.adversaries.append(whale)
            elif name == "dodger":
                self.adversaries.append(DeficitDodger(env, self.cast.lps[0], a, segment_label="majors"))
            else:
                raise ValueError(f"unknown adversary {name!r}")

    # -- the path ---------------------------------------------------------------

    def schedule(self) -> list[tuple[int, int, str, int]]:
        """(time, order, kind, step) of every oracle update and keeper pass, in time order.

        The keeper wakes on an oracle update, acts `latency` seconds later, and misses the updates
        that come while it is busy: it next wakes on the first update after its pass. So a
        latency of several update intervals means fewer, later passes, some on prices it never
        reacted to; latency 0 is a pass right after every update."""
        dt, latency = self.spec.path.dt, self.spec.latency
        updates = [self.t0 + dt * (i + 1) for i in range(len(self.spec.path))]
        events = [(t, 0, "oracle", i) for i, t in enumerate(updates)]
        last_pass = -1
        for i, t in enumerate(updates):
            if t > last_pass:
                last_pass = t + latency
                events.append((last_pass, 1, "keeper", i))
        return sorted(events)

    def drive(self) -> None:
        worst = int(np.argmin(np.diff(self.spec.path.majors))) + 1 if len(self.spec.path) > 1 else 0
        for when, _, kind, step in self.schedule():
            chain.pending_timestamp = max(when, int(chain.blocks.head.timestamp))
            if kind == "oracle":
                self.sample_margin()  # the interval that this update ends
                self.publish(step)
                self.lp_moves(step)
                self.adversary_moves(step, worst)
                if self.crowd is not None and step % self.spec.rebalance_every == 0:
                    self.crowd.act()
                self.record_nav()
            else:
                self.keeper_pass()
                self.record_nav()
        self.sample_margin()  # the last interval, up to the settlement

    def sample_margin(self) -> None:
        """Add one oracle interval (dt) of the traders' IM and notional, as the vault computes them now."""
        owners = [t.address for t in self.cast.traders]
        for segment in self.system.segments.values():
            for health in self.system.lens.health_of(owners, segment):
                self.im_seconds += self.spec.path.dt * int(health[2])
                self.notional_seconds += self.spec.path.dt * int(health[4])

    def publish(self, step: int) -> None:
        path = self.spec.path
        for label, market in self.system.markets.items():
            multiplier = path.majors[step] if market.segment == self.system.segments["majors"] else path.alts[step]
            set_price(self.system, label, max(int(self.base[label] * multiplier), wad(0.0002)), self.cast.deployer)

    def refresh(self) -> None:
        """Re-publish the last prices (the feeds' heartbeat is an hour)."""
        self.publish(len(self.spec.path) - 1)

    def lp_moves(self, step: int) -> None:
        """The second LP asks to leave a third of the way in and redeems once its cooldown is over."""
        leaver = self.cast.lps[1]
        pool = self.system.pools["majors"]
        if step == len(self.spec.path) // 3:
            self.leaver_shares = int(pool.balanceOf(leaver))
            pool.request_redeem(self.leaver_shares, sender=leaver)
        elif self.leaver_shares and not self.lp_exit_ok and int(pool.maxRedeem(leaver)) >= self.leaver_shares:
            before = int(self.system.token.balanceOf(leaver))
            try:
                pool.redeem(self.leaver_shares, leaver, leaver, sender=leaver)
            except ContractLogicError:  # e.g. "pool: zero assets" once a crash has emptied the pool
                self.leaver_shares = 0
                return
            self.lp_outflow += int(self.system.token.balanceOf(leaver)) - before
            self.lp_exit_ok = True

    def adversary_moves(self, step: int, worst: int) -> None:
        for agent in self.adversaries:
            if isinstance(agent, WhaleSelfLiquidator):
                agent.self_liquidate(rounds=2)
            elif isinstance(agent, DeficitDodger) and step == worst:
                agent.begin()
                agent.play()
                agent.end()

    def keeper_pass(self) -> None:
        """One liquidate_all per segment (takeover before ADL of an unsold auction), then the keeper
        unwinds what it took over (a real keeper hedges at once: it earns the discount and fees, not the
        market's next move); then it takes the backstop liquidator's inventory back at its discount
        schedule (unwind_inventory, which also marks and reclaims its accounts) and hedges that too."""
        if self.forecaster is not None:
            self.forecaster.step()  # before the poke that applies it
        owners = [a.address for a in self.cast.margin_accounts]
        if self.spec.keeper == "bot":
            self.bot_pass()
        else:
            if self.system.risk is not None:
                self.poke_markets()
            for segment in self.system.segments.values():
                self.note(liquidate_all(self.system, self.cast.keeper, owners, segment))
        if self.spec.flagger:
            self.flag_unsold(owners)
        self.close_against_maker(self.cast.keeper, as_maker=True)
        if self.holds_inventory():
            self.unwind_pass()

    def unwind_pass(self) -> None:
        """unwind_inventory one close-factor chunk at a time, each hedged at once (so a keeper whose margin
        carries one chunk takes several per pass), up to UNWIND_ROUNDS chunks per segment."""
        for segment in self.system.segments.values():
            for _ in range(UNWIND_ROUNDS):
                report = unwind_inventory(self.system, self.cast.keeper, segment, max_calls=1)
                if not report.of("unwind"):
                    break
                self.close_against_maker(self.cast.keeper, as_maker=True)

    def note(self, report: Report) -> None:
        """Count the takeovers the liquidator's caps refused (engine.takeover reverts, ADL follows)."""
        self.refused += sum(1 for a in report.of("error") if "takeover refused" in (a.error or ""))

    def flag_unsold(self, owners: Sequence[str]) -> None:
        """RunSpec.flagger: start the auction clock of every account still liquidatable after the keeper's
        liquidations (what its margin could not carry). Neither keeper policy flags an account it cannot take,
        so without this such an account would never reach the auction's end."""
        engine = self.system.engine
        for segment in self.system.segments.values():
            for status in scan(self.system, owners, segment):
                if not status.liquidatable or int(engine.flagged_at(status.owner, segment)) != 0:
                    continue
                try:
                    engine.flag(status.owner, segment, sender=self.cast.keeper)
                except ContractLogicError:
                    pass

    def holds_inventory(self) -> bool:
        """The backstop's liquidator has an account (positions, or flat and not yet reclaimed)."""
        liquidator = self.system.liquidator
        return liquidator is not None and len(liquidator.accounts()) > 0

    def bot_pass(self) -> None:
        """The production keeper: Keeper runs (each one block's work, batched, receipts collected) until a
        run finds nothing to send; it pokes RiskParams itself when the deployment has it."""
        if self.bot is None:
            self.bot = Keeper(self.system, self.cast.keeper, gas_price_wei=0, start_block=self.first_block)
        for _ in range(MAX_BOT_RUNS):
            done = self.bot.metrics.sent + self.bot.metrics.fallbacks
            self.bot.run()
            self.bot.drain()
            if self.bot.metrics.sent + self.bot.metrics.fallbacks == done:
                break

    def close_against_maker(self, account: AccountAPI, as_maker: bool = False) -> None:
        """Close every position of `account` at the oracle price, the market maker taking the other
        side. `as_maker`: `account` signs the order and the market maker fills it (a keeper posts
        a resting order and pays the maker fee, not the taker fee)."""
        for market in self.system.markets.values():
            size = int(self.system.vault.position(account, market.id)[0])
            if size == 0:
                continue
            mark = int(self.system.oracle.price(market.id))
            try:
                if as_maker:
                    trade(self.system, account, self.cast.maker, market.id, -size, mark)
                else:
                    trade(self.system, self.cast.maker, account, market.id, size, mark)
            except ContractLogicError:
                pass  # e.g. still bankrupt after the keeper's passes: the invariants report what is left

    def pool_nav(self) -> tuple[int, int, int]:
        pools = self.system.pools
        return (int(pools["majors"].totalAssets()), int(pools["alts"].totalAssets()),
                int(self.system.backstop.totalAssets()))

    def record_nav(self) -> None:
        nav = self.pool_nav()
        t = int(chain.blocks.head.timestamp) - self.t0
        self.nav.append((t, *nav))
        self.losses.append(self.pool_start - sum(nav) - self.lp_outflow if self.pool_start else 0)
        liquidator = self.system.liquidator
        held = int(liquidator.inventory()[0]) if liquidator is not None else 0
        self.inventory.append((t, held, int(self.system.backstop.assets_per_share())))

    # -- the end ------------------------------------------------------------------

    def settle(self) -> None:
        """Keeper passes until nothing is liquidatable, then everyone closes and withdraws."""
        chain.pending_timestamp = int(chain.blocks.head.timestamp) + self.spec.path.dt
        self.refresh()
        for _ in range(4):
            self.keeper_pass()
        self.aftermath()
        self.sell_inventory()
        self.close_all()
        self.record_nav()
        self.wait_for_gates()
        self.withdrawals = {a.address: self.withdraw_all(a) for a in self.cast.margin_accounts}

    def aftermath(self) -> None:
        """RunSpec.aftermath: time goes on at the last prices, one keeper pass per path.dt, while an account is
        liquidatable or the liquidator holds inventory (auctions flagged late end, the inventory unwinds)."""
        if not self.spec.aftermath:
            return
        owners = [a.address for a in self.cast.margin_accounts]
        start = now = int(chain.blocks.head.timestamp)
        while now - start < self.spec.aftermath and (self.holds_inventory() or any(
                s.liquidatable for seg in self.system.segments.values() for s in scan(self.system, owners, seg))):
            now += self.spec.path.dt
            chain.pending_timestamp = now
            self.refresh()
            self.keeper_pass()
            self.record_nav()
        self.aftermath_seconds = now - start

    def sell_inventory(self) -> None:
        """What the liquidator still holds at the end is sold to the market maker at the discount schedule (the
        run's figures say it was not unwound), so every account can close and withdraw."""
        liquidator = self.system.liquidator
        if liquidator is None or not self.holds_inventory():
            return
        if int(liquidator.inventory()[0]) > 0:
            self.forced_at = int(chain.blocks.head.timestamp)
        for segment in self.system.segments.values():
            unwind_inventory(self.system, self.cast.maker, segment, max_calls=64)

    def close_all(self) -> None:
        """Every account but the maker closes at the oracle price against the maker."""
        for account in self.cast.margin_accounts[1:]:
            self.close_against_maker(account)

    def wait_for_gates(self) -> None:
        """An uncovered deficit gates a segment's withdrawals for a while (docs/design.md 3.7):
        winners wait it out, then the feeds are refreshed and they withdraw."""
        now = int(chain.blocks.head.timestamp)
        until = max(int(self.system.vault.segment_state(s)) >> 192 for s in self.system.segments.values())
        if until > now:
            self.withdraw_wait = until - now
            chain.pending_timestamp = until
            self.refresh()

    def withdraw_all(self, account: AccountAPI) -> tuple[int, int]:
        """(owed, withdrawn): what the account's collateral says it is owed and what it got."""
        owed = got = 0
        for segment in self.system.segments.values():
            collateral = int(self.system.vault.collateral(account, segment))
            if collateral <= 0:
                continue
            owed += collateral
            try:
                self.system.vault.withdraw(segment, collateral, sender=account)
                got += collateral
            except ContractLogicError:
                pass
        return owed, got

    def result(self) -> Result:
        res = failed_result(self.spec, None)
        res.failed, res.nav = "", self.nav
        self.pool_figures(res)
        self.count_events(res)
        self.payouts(res)
        res.pools_could_pay = res.adl_events == 0 and res.bad_debt_unpaid == 0
        res.lp_exit_ok, res.withdraw_wait = self.lp_exit_ok, self.withdraw_wait
        res.adversary_pnl = sum(self.adversary_pnl(agent) for agent in self.adversaries)
        res.im_seconds, res.notional_seconds = self.im_seconds, self.notional_seconds
        res.avg_margin = round(self.im_seconds / self.notional_seconds, 6) if self.notional_seconds else 0.0
        res.forecasts = self.forecaster.pushes if self.forecaster is not None else 0
        res.inventory, res.aftermath_seconds = self.inventory, self.aftermath_seconds
        res.takeover_refused = self.refused
        self.inventory_figures(res)
        if self.crowd is not None:
            res.trader_fills, res.trader_refused = self.crowd.fills, self.crowd.refused
        errors = check_invariants(self.system, self.cast.everyone)  # the liquidator's account is an actor too
        res.invariant_errors, res.first_error = len(errors), (errors[0][:200] if errors else "")
        return res

    @staticmethod
    def adversary_pnl(agent: Any) -> int:
        """An agent that played: its P&L after everyone withdrew (0 if it never got to play)."""
        if agent.before is None:
            return 0
        if agent.after is None or isinstance(agent, WhaleSelfLiquidator):
            agent.end()
        return agent.pnl

    def inventory_figures(self, res: Result) -> None:
        """Backstop drawdown (assets per share against its running peak), the liquidator's peak inventory and
        the time from the first TakenOver to its inventory back at 0 after the last one."""
        peak, worst = 0, 0.0
        for _, _, aps in self.inventory:
            peak = max(peak, aps)
            worst = max(worst, (peak - aps) / peak if peak else 0.0)
        res.backstop_drawdown = round(worst, 6)
        res.inventory_peak = max((held for _, held, _ in self.inventory), default=0)
        if not self.takeover_times:
            return
        first = self.takeover_times[0] - self.t0
        held = [i for i, (_, notional, _) in enumerate(self.inventory) if notional > 0]
        if self.forced_at is not None:
            res.unwound, end = False, self.forced_at - self.t0
        elif not held:
            end = first  # taken and unwound within the same keeper pass
        elif held[-1] + 1 < len(self.inventory):
            end = self.inventory[held[-1] + 1][0]
        else:
            res.unwound, end = False, self.inventory[-1][0]
        res.unwind_seconds = max(end - first, 0)

    def pool_figures(self, res: Result) -> None:
        totals = [sum(n[1:]) for n in self.nav]
        res.pool_nav_start, res.pool_nav_min, res.pool_nav_end = self.pool_start, min(totals), totals[-1]
        res.pool_drawdown = round(max(self.losses) / self.pool_start, 4) if self.pool_start else 0.0

    def payouts(self, res: Result) -> None:
        """Keeper profit, and what winners (owed more than they deposited) could not withdraw."""
        keeper = self.cast.keeper.address
        res.keeper_profit = self.withdrawals[keeper][1] - self.deposited[keeper]
        for account in self.cast.margin_accounts:
            owed, got = self.withdrawals[account.address]
            if owed > self.deposited.get(account.address, 0):
                res.winners += 1
                res.winners_unpaid += owed - got

    def count_events(self, res: Result) -> None:
        start, stop = self.start_block, int(chain.blocks.head.number) + 1
        # every settle attempt re-reports the account's outstanding deficit: count each unit of bad debt once
        # (what exceeds the previous attempt's unpaid rest), and as unpaid what the last attempt left
        outstanding: dict[tuple[str, int], int] = {}
        for log in self.system.vault.BadDebtCovered.range(start, stop):
            key = (str(log.owner), int(log.segment))
            res.bad_debt += max(int(log.deficit) - outstanding.get(key, 0), 0)
            res.bad_debt_paid += int(log.paid)
            outstanding[key] = int(log.unpaid)
        res.bad_debt_unpaid = sum(outstanding.values())
        res.backstop_draws = sum(int(log.paid) for log in self.system.backstop.Draw.range(start, stop))
        adl = list(self.system.engine.Deleveraged.range(start, stop))
        res.adl_events, res.adl_socialized = len(adl), sum(int(log.socialized_loss) for log in adl)
        res.liquidations = len(list(self.system.engine.Liquidated.range(start, stop)))
        res.winners_hit = len({str(log.counterparty) for log in adl})
        scale = int(self.system.vault.notional_scale())
        res.adl_notional = sum(int(log.size) * int(log.price) // scale for log in adl)
        self.takeover_times: list[int] = []
        if self.system.liquidator is None:
            return
        taken = list(self.system.engine.TakenOver.range(start, stop))
        res.takeovers = len(taken)
        res.takeover_notional = sum(int(log.size) * int(log.price) // scale for log in taken)
        self.takeover_times = [int(chain.blocks[log.block_number].timestamp) for log in taken]
        backstop = self.system.backstop
        lent = sum(int(log.amount) for log in backstop.LiquidatorFunded.range(start, stop))
        returned = sum(int(log.returned) for log in backstop.LiquidatorSettled.range(start, stop))
        liquidator = self.system.liquidator
        still = sum(max(int(self.system.vault.account_health(liquidator, int(a.segment)).equity), 0)
                    for a in liquidator.accounts())
        res.takeover_pnl = returned + still - lent


# ---------------------------------------------------------------- sweeps

DEFAULT_GAPS = (0.0, 0.2, 0.4, 0.6)
DEFAULT_LATENCIES = (0, 120, 600)


def grid(gaps: Sequence[float] = DEFAULT_GAPS, latencies: Sequence[int] = DEFAULT_LATENCIES,
         seeds: Sequence[int] = (0,), margin_models: Sequence[str] = ("default",), drift: float = -0.01,
         **spec_kw: Any) -> list[RunSpec]:
    """The sweep gap x keeper latency (x seed x margin model). After the gap the price keeps
    sliding by `drift` per update, so a slow keeper meets accounts that got deeper under water."""
    return [RunSpec(path=gap(g, drift=drift), latency=lat, seed=seed, margin_model=mm, **spec_kw)
            for g, lat, seed, mm in itertools.product(gaps, latencies, seeds, margin_models)]


def sweep(specs: Sequence[RunSpec], *, scheduler: str | None = None, n_workers: int = 2,
          progress: bool = True, client: Any = None) -> list[Result]:
    """Run `specs` on Dask: on `client` if given, else on a LocalCluster (processes, one thread each) unless
    `scheduler` names a running scheduler (tcp://host:8786). Results come back in the order of `specs`."""
    if client is not None:
        return _gather(client, specs, progress)
    with dask_client(scheduler, n_workers) as fresh:
        return _gather(fresh, specs, progress)


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int = 2) -> Iterator[Any]:
    """A Dask client for several sweeps in a row (e.g. a calibration's iterations): each worker keeps its Anvil
    between them. A LocalCluster's workers stop their Anvils when it closes."""
    from dask.distributed import Client, LocalCluster

    cluster = None if scheduler else LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=None)
    client = Client(scheduler or cluster)
    try:
        yield client
    finally:
        if cluster is not None:
            client.run(disconnect)
        client.close()
        if cluster is not None:
            cluster.close()


def _gather(client: Any, specs: Sequence[RunSpec], progress: bool) -> list[Result]:
    from dask.distributed import as_completed

    futures = client.map(run_in_worker, list(specs), pure=False)
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[Result | None] = [None] * len(futures)
    for future in _progress(as_completed(futures), len(futures), progress):
        results[index[future.key]] = future.result()
    return [r for r in results if r is not None]


def _progress(items: Iterable[Any], total: int, show: bool) -> Iterable[Any]:
    if not show:
        yield from items
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("stress runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as bar:
        task = bar.add_task("runs", total=total)
        for item in items:
            yield item
            bar.advance(task)


# ---------------------------------------------------------------- reports


def write_csv(results: Sequence[Result], path: str | PathLike) -> None:
    """One row per run, the columns of Result (without the NAV series)."""
    import csv

    rows = [r.row() for r in results]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else list(Result.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(rows)


def write_dataclass_rows(rows: Sequence[Any], fields: Sequence[str], path: str | PathLike) -> None:
    """A CSV of dataclass `rows`, one column per name of `fields` (a comparison's summary table)."""
    import csv
    from dataclasses import asdict

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)


def worst_run(results: Sequence[Result]) -> Result:
    """The run to show in the NAV plot: the deepest pool drawdown (ties: the slowest keeper)."""
    finished = [r for r in results if r.nav] or list(results)
    return max(finished, key=lambda r: (r.pool_drawdown, r.latency, r.gap))


def plot_nav(result: Result, path: str | PathLike, decimals: int = 6) -> None:
    """Segment pools' and backstop's NAV over one run (matplotlib Agg: no display needed)."""
    plt = _pyplot()
    t = [n[0] / 60 for n in result.nav]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for k, name in enumerate(("majors pool", "alts pool", "backstop"), start=1):
        ax.step(t, [n[k] / 10**decimals for n in result.nav], where="post", label=name)
    ax.set(xlabel="minutes since the first oracle update", ylabel="NAV (quote units)",
           title=f"Pool NAV through {result.label}: bad debt {result.bad_debt / 10**decimals:,.0f}, "
                 f"ADL {result.adl_events}")
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_heatmap(results: Sequence[Result], path: str | PathLike) -> None:
    """Mean pool drawdown per (gap, keeper latency) cell of a sweep (gap paths only, when there are any:
    a crash replay or a GBM path has no single gap size to sit on that axis)."""
    plt = _pyplot()
    results = [r for r in results if r.path.startswith("gap-")] or list(results)
    gaps = sorted({r.gap for r in results})
    latencies = sorted({r.latency for r in results})
    cells = np.full((len(gaps), len(latencies)), np.nan)
    for i, g in enumerate(gaps):
        for j, lat in enumerate(latencies):
            values = [r.pool_drawdown for r in results if r.gap == g and r.latency == lat]
            if values:
                cells[i, j] = float(np.mean(values))
    fig, ax = plt.subplots(figsize=(1.6 * len(latencies) + 3, 0.8 * len(gaps) + 2))
    image = ax.imshow(cells * 100, cmap="Reds", aspect="auto", origin="lower", vmin=0)
    ax.set_xticks(range(len(latencies)), [f"{lat} s" for lat in latencies])
    ax.set_yticks(range(len(gaps)), [f"{-g * 100:.0f}%" if g else "0%" for g in gaps])
    for (i, j), value in np.ndenumerate(cells):
        if not np.isnan(value):
            ax.text(j, i, f"{value * 100:.1f}%", ha="center", va="center")
    ax.set(xlabel="keeper latency after each oracle update", ylabel="gap (one oracle update)",
           title="Pool drawdown (segment pools + backstop)")
    fig.colorbar(image, ax=ax, label="drawdown, %")
    _save(fig, path)


def write_reports(results: Sequence[Result], out_dir: str | PathLike = "reports", decimals: int = 6) -> dict[str, Path]:
    """reports/stress.csv, stress_nav.png and stress_heatmap.png; returns their paths."""
    out = Path(out_dir)
    paths = {"csv": out / "stress.csv", "nav": out / "stress_nav.png", "heatmap": out / "stress_heatmap.png"}
    write_csv(results, paths["csv"])
    plot_nav(worst_run(results), paths["nav"], decimals)
    plot_heatmap(results, paths["heatmap"])
    return paths


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | PathLike) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.clf()
    _pyplot().close(fig)


__all__ = ["MARGIN_MODELS", "SIM_MIN_INTERVAL", "SIZE_KNEE", "Cast", "MarginModel", "Result", "RunSpec", "Sim",
           "connect", "dask_client", "fresh_chain", "freeze_clock", "grid", "make_cast", "plot_heatmap", "plot_nav",
           "run", "run_in_worker", "sweep", "worst_run", "write_csv", "write_reports"]
