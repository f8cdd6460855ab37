"""Live deploys leave the deployer EOA in charge of nothing: the config's governance section
is parsed, a live config without guardian or proposers is refused before any transaction,
and the live code path of deploy_system hands every admin role to the timelock."""

import json
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from eth_utils import to_checksum_address

import backstop.client.deploy
from backstop.core.config import ZERO_ADDRESS, ConfigError, GovernanceSpec, MarketSpec, SystemConfig
from backstop.client.deploy import deploy_system
from backstop.client.governance import admin_roles_held, governed_by_label, roles_held

EXAMPLE = Path(__file__).parents[2] / "deployments" / "sepolia.example.json"
DELAY = 3 * 86400
GUARDIAN = "0x00000000000000000000000000000000000000a1"
PROPOSER = "0x00000000000000000000000000000000000000b2"
SOMEWHERE = "0x00000000000000000000000000000000000000C3"  # a token / feed for checks only


@contextmanager
def live_path():
    """deploy_system takes its live path (real token and feeds, hand-over) on Anvil."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backstop.client.deploy, "is_local_network", lambda: False)
        yield


def write_config(tmp_path: Path, **overrides) -> Path:
    raw = json.loads(EXAMPLE.read_text())
    raw.update(overrides)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


# ---------------------------------------------------------------- the config file


def test_from_file_parses_the_governance_section(tmp_path):
    governance = {"guardian": GUARDIAN, "proposers": [PROPOSER], "executors": [PROPOSER],
                  "timelock_delay": DELAY, "_comment": "ignored"}
    config = SystemConfig.from_file(write_config(tmp_path, governance=governance))
    assert config.governance == GovernanceSpec(  # addresses checksummed
        timelock_delay=DELAY,
        proposers=(to_checksum_address(PROPOSER),),
        executors=(to_checksum_address(PROPOSER),),
        guardian=to_checksum_address(GUARDIAN),
    )
    config.check(live=True)


def test_from_file_defaults_without_a_governance_section(tmp_path):
    raw = json.loads(EXAMPLE.read_text())
    del raw["governance"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    assert SystemConfig.from_file(path).governance == GovernanceSpec()
    assert GovernanceSpec().timelock_delay == 2 * 86400


@pytest.mark.parametrize("governance, message", [
    ({"guardians": [GUARDIAN]}, "unknown governance keys ['guardians']"),
    ({"guardian": "0x1234"}, "governance.guardian: '0x1234' is not an address"),
    ({"proposers": ["multisig"]}, "governance.proposers: 'multisig' is not an address"),
])
def test_from_file_refuses_a_malformed_governance_section(tmp_path, governance, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SystemConfig.from_file(write_config(tmp_path, governance=governance))


def test_the_shipped_example_is_refused_until_governance_is_filled_in():
    with pytest.raises(ConfigError) as refused:
        SystemConfig.from_file(EXAMPLE).check(live=True)
    problems = str(refused.value).splitlines()[1:]
    assert len(problems) == 2
    assert "missing governance.guardian" in problems[0]
    assert "missing governance.proposers" in problems[1]


# ---------------------------------------------------------------- validation


def live_config(token: str = SOMEWHERE, feed: str = SOMEWHERE, **governance) -> SystemConfig:
    return SystemConfig(
        segments=("majors",),
        markets=(MarketSpec("ETH-PERP", "majors", feed=feed, min_price=Decimal("1")),),
        quote_token=token,
        governance=GovernanceSpec(**governance),
        vol_margin=True,  # RiskParams too: its roles must end with the timelock like the others'
    )


@pytest.mark.parametrize("governance, missing", [
    ({}, ["governance.guardian", "governance.proposers"]),
    ({"guardian": GUARDIAN}, ["governance.proposers"]),
    ({"proposers": (PROPOSER,)}, ["governance.guardian"]),
])
def test_live_check_names_every_missing_key(governance, missing):
    with pytest.raises(ConfigError) as refused:
        live_config(**governance).check(live=True)
    message = str(refused.value)
    assert message.startswith("live deploy refused")
    for key in ("governance.guardian", "governance.proposers"):
        assert (f"missing {key}" in message) == (key in missing)


@pytest.mark.parametrize("governance, problem", [
    ({"hand_over": False}, "governance.hand_over=False"),
    ({"guardian": ZERO_ADDRESS}, "governance.guardian holds the zero address"),
    ({"executors": (ZERO_ADDRESS,)}, "governance.executors holds the zero address"),
])
def test_live_check_refuses_governance_that_cannot_hold_the_roles(governance, problem):
    config = live_config(**{"guardian": GUARDIAN, "proposers": (PROPOSER,), **governance})
    assert [p for p in config.problems(live=True) if problem in p]


def test_local_check_keeps_todays_defaults():
    SystemConfig().check(live=False)
    assert not GovernanceSpec().hands_over(live=False)
    assert GovernanceSpec().hands_over(live=True)


def test_live_deploy_without_governance_sends_nothing(deployer, chain):
    nonce, block = deployer.nonce, chain.blocks.head.number
    with live_path(), pytest.raises(ConfigError, match="missing governance.guardian") as refused:
        deploy_system(deployer, live_config())
    assert "missing governance.proposers" in str(refused.value)
    assert (deployer.nonce, chain.blocks.head.number) == (nonce, block)


# ---------------------------------------------------------------- the hand-over, live path


@pytest.fixture(scope="module")
def live_mocks(project, deployer):
    """Stand-ins for the real quote token and Chainlink feed a live config names."""
    token = project.MockERC20.deploy("USD Coin", "USDC", 6, sender=deployer)
    feed = project.MockAggregator.deploy(8, "ETH / USD", 3000 * 10**8, sender=deployer)
    return token, feed


@pytest.fixture(scope="module")
def live_deployed(live_mocks, deployer, other, lp):
    """Deployed by deploy_system's live path: `other` is the guardian, `lp` the proposer."""
    token, feed = live_mocks
    config = live_config(token.address, feed.address, timelock_delay=DELAY,
                         guardian=other.address, proposers=(lp.address,))
    with live_path():
        return deploy_system(deployer, config)


def all_contracts(system) -> dict:
    return {**governed_by_label(system), "timelock": system.timelock}


def test_live_deploy_leaves_the_deployer_no_role_at_all(live_deployed, deployer):
    assert not live_deployed.local
    assert admin_roles_held(live_deployed, deployer.address) == {}
    held = {label: roles_held(c, deployer.address) for label, c in all_contracts(live_deployed).items()}
    assert held == {label: [] for label in held}


def test_live_deploy_gives_every_admin_role_to_the_timelock(live_deployed):
    timelock = live_deployed.timelock.address
    for label, contract in governed_by_label(live_deployed).items():
        for name in ("DEFAULT_ADMIN_ROLE", "RISK_ADMIN_ROLE", "FEED_ADMIN_ROLE"):
            if label == "vault" and name == "RISK_ADMIN_ROLE":
                continue  # contracts only: test_vault_risk_admin_stays_with_the_validating_contracts
            if hasattr(contract, name):
                assert contract.hasRole(getattr(contract, name)(), timelock), (label, name)


def test_vault_risk_admin_stays_with_the_validating_contracts(live_deployed, deployer):
    """The timelock changes parameters through the Configurator (validated), never by writing
    raw words into the vault; RiskParams (whose code writes only the two ratio fields, within
    its validated floor and cap) is the only other holder."""
    vault, role = live_deployed.vault, live_deployed.vault.RISK_ADMIN_ROLE()
    assert vault.hasRole(role, live_deployed.configurator)
    assert vault.hasRole(role, live_deployed.risk)
    for account in (live_deployed.timelock, deployer):
        assert not vault.hasRole(role, account)
    assert live_deployed.configurator.hasRole(role, live_deployed.timelock)
    assert not live_deployed.configurator.hasRole(role, live_deployed.risk)  # it needs no Configurator role


def test_live_deploy_gives_the_pause_roles_to_the_guardian_only(live_deployed, other):
    for label, contract in governed_by_label(live_deployed).items():
        expected = ["GUARDIAN_ROLE"] if hasattr(contract, "GUARDIAN_ROLE") else []
        assert roles_held(contract, other.address) == expected, label


def test_live_timelock_has_the_configured_proposers_executors_and_delay(live_deployed, lp):
    timelock = live_deployed.timelock
    assert timelock.get_minimum_delay() == DELAY
    assert roles_held(timelock, lp.address) == ["CANCELLER_ROLE", "PROPOSER_ROLE"]
    assert roles_held(timelock, ZERO_ADDRESS) == ["EXECUTOR_ROLE"]  # empty executors: anyone
    assert roles_held(timelock, timelock.address) == ["DEFAULT_ADMIN_ROLE"]


def test_configured_executors_replace_open_execution(live_mocks, deployer, other, lp, keeper):
    token, feed = live_mocks
    config = live_config(token.address, feed.address, guardian=other.address,
                         proposers=(lp.address,), executors=(keeper.address,))
    with live_path():
        timelock = deploy_system(deployer, config).timelock
    assert roles_held(timelock, keeper.address) == ["EXECUTOR_ROLE"]
    assert roles_held(timelock, ZERO_ADDRESS) == []


def test_local_deploy_keeps_the_deployer_in_charge(system, deployer):
    """Today's local behaviour: tests change parameters directly."""
    assert "RISK_ADMIN_ROLE" in roles_held(system.configurator, deployer.address)
    assert admin_roles_held(system, deployer.address)
