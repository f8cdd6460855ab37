"""The one deployment path: used by scripts/deploy.py, the demo, benchmarks and tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ape import chain, networks, project
from ape.api import AccountAPI
from ape.contracts import ContractInstance

from backstop.client.governance import hand_over_to_timelock
from backstop.client.pools import deploy_liquidator, deploy_pools, join_liquidator
from backstop.core.config import ZERO_ADDRESS, MarketSpec, SystemConfig
from backstop.core.units import wad
from backstop.core.volatility import VolMarginParams


@dataclass
class Market:
    id: int
    label: str
    segment: int
    spec: MarketSpec
    feed: ContractInstance | str  # a MockAggregator on local chains, the live aggregator address otherwise


@dataclass
class System:
    token: ContractInstance
    vault: ContractInstance
    lens: ContractInstance  # VaultLens: the views keepers, scripts and the demo read
    configurator: ContractInstance  # holds the vault's RISK_ADMIN_ROLE: listings and market parameters
    oracle: ContractInstance
    engine: ContractInstance
    pools: dict[str, ContractInstance]  # segment label -> InsurancePool
    backstop: ContractInstance  # the shared BackstopPool
    timelock: ContractInstance  # owns every admin role once handed over
    segments: dict[str, int]
    markets: dict[str, Market]
    treasury: str
    local: bool
    extra: dict[str, Any] = field(default_factory=dict)
    risk: ContractInstance | None = None  # RiskParams (volatility margin), when deployed
    liquidator: ContractInstance | None = None  # BackstopLiquidator: the backstop's liquidator of last resort

    @property
    def decimals(self) -> int:
        return int(self.vault.quote_decimals())

    def market(self, label: str) -> Market:
        return self.markets[label]

    def pool_at(self, address: str) -> ContractInstance:
        """The segment pool deployed at `address` (e.g. what `vault.segment_pool` returns)."""
        for pool in self.pools.values():
            if pool.address == address:
                return pool
        raise KeyError(address)

    def addresses(self) -> dict[str, Any]:
        return {
            "chain_id": chain.chain_id,
            "token": self.token.address,
            "vault": self.vault.address,
            "lens": self.lens.address,
            "configurator": self.configurator.address,
            "oracle": self.oracle.address,
            "engine": self.engine.address,
            "backstop": self.backstop.address,
            "timelock": self.timelock.address,
            **({"risk": self.risk.address} if self.risk is not None else {}),
            **({"liquidator": self.liquidator.address} if self.liquidator is not None else {}),
            "pools": {label: pool.address for label, pool in self.pools.items()},
            "treasury": self.treasury,
            "segments": self.segments,
            "markets": {
                label: {
                    "id": m.id,
                    "segment": m.segment,
                    "feed": m.feed if isinstance(m.feed, str) else m.feed.address,
                }
                for label, m in self.markets.items()
            },
        }

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.addresses(), indent=2) + "\n")


def load_system(path: str | Path) -> System:
    """The System recorded by `System.save` (deployments/<network>-<chain id>.json), for bots and
    scripts that join an existing deployment; refuses a file recorded on another chain."""
    raw = json.loads(Path(path).read_text())
    recorded, connected = raw.get("chain_id"), int(chain.chain_id)
    if recorded is None or int(recorded) != connected:
        # a file from another chain (e.g. an ephemeral Anvil long gone) would point a bot at empty addresses
        raise DeploymentMismatch(f"{path} is a deployment on chain {recorded}, but the provider is on chain {connected}"
                                 f" (deploy on this chain, or pass the file written for it: {deployment_path(Path(path).parent)})")
    segment_names = {segment_id: label for label, segment_id in raw["segments"].items()}
    markets = {
        label: Market(
            id=m["id"],
            label=label,
            segment=m["segment"],
            spec=MarketSpec(label, segment_names[m["segment"]], feed=m["feed"]),
            feed=project.MockAggregator.at(m["feed"]) if is_local_network() else m["feed"],
        )
        for label, m in raw["markets"].items()
    }
    return System(
        token=project.MockERC20.at(raw["token"]) if is_local_network() else _erc20_at(raw["token"]),
        vault=project.MarginVault.at(raw["vault"]),
        lens=project.VaultLens.at(raw["lens"]),
        configurator=project.Configurator.at(raw["configurator"]),
        oracle=project.OracleAdapter.at(raw["oracle"]),
        engine=project.LiquidationEngine.at(raw["engine"]),
        pools={label: project.InsurancePool.at(a) for label, a in raw["pools"].items()},
        backstop=project.BackstopPool.at(raw["backstop"]),
        timelock=project.Timelock.at(raw["timelock"]),
        segments=raw["segments"],
        markets=markets,
        treasury=raw["treasury"],
        local=is_local_network(),
        risk=project.RiskParams.at(raw["risk"]) if raw.get("risk") else None,
        liquidator=project.BackstopLiquidator.at(raw["liquidator"]) if raw.get("liquidator") else None,
    )


class DeploymentMismatch(ValueError):
    """A deployment file recorded on another chain than the connected one."""


def deployment_path(directory: str | Path = "deployments") -> Path:
    """Where `make deploy` writes (and bots read) the deployment of the connected chain:
    <network>-<chain id>.json, so a deploy on one chain never overwrites another chain's file."""
    return Path(directory) / f"{networks.provider.network.name}-{int(chain.chain_id)}.json"


def is_local_network() -> bool:
    return networks.provider.network.name in ("local", "anvil")


def deploy_system(deployer: AccountAPI, config: SystemConfig | None = None,
                  backstop: ContractInstance | None = None) -> System:
    """Deploy token (local only), oracle adapter, vault, segments and markets; wire roles.

    With `backstop` (another deployment's BackstopPool on the same quote token) the segment pools
    join it as members and the engine joins its liquidator of last resort, instead of a new
    backstop and liquidator: one backstop for many protocols (docs/pools.md). The deployer must
    then hold the backstop's and its liquidator's admin roles.

    On a non-local network every admin and risk role ends with the timelock and the pause
    roles with the configured guardian; a config that cannot achieve that (no guardian, no
    proposers, no real token or feeds) raises backstop.core.config.ConfigError before the first
    transaction. Locally the deployer keeps its roles unless governance.hand_over is set.
    """
    config = config or SystemConfig()
    local = is_local_network()
    config.check(live=not local)
    treasury = config.treasury or deployer.address

    if backstop is not None:
        # the shared backstop fixes the quote token (its members must all use it)
        token = project.MockERC20.at(backstop.asset()) if local else _erc20_at(backstop.asset())
    elif local:
        token = project.MockERC20.deploy("USD Coin (local)", "USDC", config.quote_decimals, sender=deployer)
    else:
        token = _erc20_at(config.quote_token)

    oracle = project.OracleAdapter.deploy(sender=deployer)
    vault = project.MarginVault.deploy(token.address, oracle.address, treasury, sender=deployer)
    lens = project.VaultLens.deploy(vault.address, sender=deployer)
    configurator = project.Configurator.deploy(vault.address, sender=deployer)
    vault.grantRole(vault.RISK_ADMIN_ROLE(), configurator.address, sender=deployer)

    segments = {label: i for i, label in enumerate(config.segments)}
    for label in config.segments:
        configurator.add_segment(label, sender=deployer)

    markets: dict[str, Market] = {}
    for market_id, spec in enumerate(config.markets):
        feed = _feed_for(spec, deployer, local)
        feed_address = feed if isinstance(feed, str) else feed.address
        oracle.set_feed(
            market_id, feed_address, spec.heartbeat, wad(spec.min_price), wad(spec.max_price), sender=deployer
        )
        segment_id = segments[spec.segment]
        configurator.add_market(spec.label, segment_id, spec.params(segment_id), sender=deployer)
        markets[spec.label] = Market(id=market_id, label=spec.label, segment=segment_id, spec=spec, feed=feed)

    engine = project.LiquidationEngine.deploy(
        vault.address, oracle.address, config.liquidation.params(config.quote_decimals), sender=deployer
    )
    vault.grantRole(vault.ENGINE_ROLE(), engine.address, sender=deployer)

    partial = System(
        token=token, vault=vault, lens=lens, configurator=configurator, oracle=oracle, engine=engine, pools={},
        backstop=None, timelock=None,
        segments=segments, markets=markets, treasury=treasury, local=local,
    )
    pools, backstop = deploy_pools(partial, deployer, config.pools, backstop=backstop)
    existing = backstop.liquidator()
    liquidator = None
    if not (config.pools or {}).get("takeover", True):
        pass  # ADL-only: no liquidator of last resort (the stress comparison's baseline)
    elif existing == ZERO_ADDRESS:
        liquidator = deploy_liquidator(backstop, engine, deployer, config.pools)
    else:
        liquidator = project.BackstopLiquidator.at(existing)
        join_liquidator(liquidator, engine, deployer)
    for label, pool in pools.items():
        configurator.set_segment_pool(segments[label], pool.address, sender=deployer)

    governance = config.governance
    timelock = project.Timelock.deploy(
        governance.timelock_delay,
        # The deployer as proposer is a local-only default: config.check refuses a live
        # deploy without proposers.
        list(governance.proposers) or [deployer.address],
        # snekmate: EXECUTOR_ROLE held by the zero address means anyone may execute an
        # operation once its delay has passed.
        list(governance.executors) or [ZERO_ADDRESS],
        ZERO_ADDRESS,  # no bootstrap admin: the timelock administers itself from the start
        sender=deployer,
    )
    system = System(
        token=token,
        vault=vault,
        lens=lens,
        configurator=configurator,
        oracle=oracle,
        engine=engine,
        pools=pools,
        backstop=backstop,
        timelock=timelock,
        segments=segments,
        markets=markets,
        treasury=treasury,
        local=local,
        liquidator=liquidator,
    )
    if config.vol_margin:
        system.risk = deploy_risk_params(system, deployer)
    if governance.hands_over(live=not local):
        hand_over_to_timelock(system, deployer, governance.guardian)
    return system


def deploy_risk_params(system: System, deployer: AccountAPI,
                       markets: dict[str, VolMarginParams] | None = None) -> ContractInstance:
    """RiskParams (volatility margin, docs/margin.md) for `system`, granted the vault's RISK_ADMIN_ROLE next to the
    Configurator (it writes the two ratio fields of a config word itself; the deployer must hold the vault's
    DEFAULT_ADMIN_ROLE: after the hand-over it is a timelocked operation), with `markets` configured (default:
    every market with the default VolMarginParams)."""
    risk = project.RiskParams.deploy(system.vault, system.oracle, sender=deployer)
    system.vault.grantRole(system.vault.RISK_ADMIN_ROLE(), risk, sender=deployer)
    chosen = markets if markets is not None else {label: VolMarginParams() for label in system.markets}
    for label, params in chosen.items():
        risk.configure(system.markets[label].id, params.as_tuple(), sender=deployer)
    return risk


def _feed_for(spec: MarketSpec, deployer: AccountAPI, local: bool) -> ContractInstance | str:
    if not local:
        return spec.feed  # present: config.check refused a live config without it
    answer = int(spec.price * 10**spec.feed_decimals)
    return project.MockAggregator.deploy(spec.feed_decimals, spec.label, answer, sender=deployer)


def _erc20_at(address: str) -> ContractInstance:
    from ape import Contract

    return Contract(address)


def with_bands(config: SystemConfig, bands: dict[str, tuple[int, int, int | None]],
               note: Callable[[str], Any] = lambda _: None) -> SystemConfig:
    """The config with each known segment's pool target_size and floor set from `bands` ({label: (target, floor,
    quote decimals they are in or None)}, e.g. backstop.risk.load_bands of a `make size` size.json), rescaled to the
    config's quote decimals; segments `bands` does not name keep theirs (docs/pools.md)."""
    pools = dict(config.pools)
    per_segment = {label: dict(v) for label, v in pools.get("segments", {}).items()}
    for label, (target, floor, decimals) in bands.items():
        if label not in config.segments:
            continue
        source = config.quote_decimals if decimals is None else decimals
        scaled, scaled_floor = (x * 10**config.quote_decimals // 10**source for x in (target, floor))
        per_segment.setdefault(label, {}).update(target_size=scaled, floor_size=scaled_floor)
        note(f"{label} pool target_size {scaled:,}, floor {scaled_floor:,}")
    pools["segments"] = per_segment
    return replace(config, pools=pools)
