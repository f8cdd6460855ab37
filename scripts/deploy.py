"""Deploy Backstop (`make deploy DEPLOY_ARGS="..."`, i.e. `ape run deploy ...`).

    ape run deploy                                   # local Anvil (started by ape-foundry)
    ape run deploy --network ethereum:sepolia:node \\
        --config deployments/sepolia.config.json --account my-deployer

Uses the one deployment path, backstop.client.deploy.deploy_system: on a local network it deploys
mock token and feeds; on any other network it takes the real quote token and Chainlink feed
addresses from --config (backstop.core.config.SystemConfig.from_file) and never deploys mocks;
the config's "governance" section must name a guardian and proposers, and every admin role
ends with the Timelock. Writes the addresses to deployments/<network>-<chain id>.json (one file per
chain: a deploy on ape's ephemeral Anvil, chain 31337, never overwrites `make anvil`'s chain 1337).
"""

from pathlib import Path

import click
from ape import accounts
from ape.cli import ConnectedProviderCommand

from backstop.reporting import display
from backstop.core.config import ConfigError, SystemConfig
from backstop.risk import load_bands
from backstop.client.deploy import deploy_system, deployment_path, is_local_network, with_bands


@click.command(cls=ConnectedProviderCommand, short_help="Deploy Backstop and write deployments/<network>-<chain id>.json")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="System config JSON (required on non-local networks).")
@click.option("--account", "alias", help="Alias of an ape account, loaded with accounts.load (required on non-local networks).")
@click.option("--targets", "targets_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A size.json from `make size`: each segment pool's target_size and floor (quote units).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("deployments"),
              show_default=True, help="Directory of the deployment file.")
def cli(network, config_path, alias, targets_path, out_dir):
    local = is_local_network()
    if local:
        # Local chains use the first funded test account; keyfile accounts are for live networks.
        if alias:
            display.note(f"--account {alias} ignored on a local network: using test account 0")
        deployer = accounts.test_accounts[0]
        config = SystemConfig.from_file(config_path) if config_path else SystemConfig()
    else:
        if not config_path:
            raise click.UsageError(f"--config is required on {network.name}: it names the real token and feeds")
        if not alias:
            raise click.UsageError(f"--account is required on {network.name} (see `ape accounts list`)")
        config = load_live_config(config_path)
        deployer = accounts.load(alias)

    if targets_path:
        config = with_bands(config, load_bands(targets_path),
                            note=lambda text: display.note(f"{text} (from {targets_path})"))
    display.step(f"Deploying Backstop on {network.ecosystem.name}:{network.name} from {deployer.address}")
    system = deploy_system(deployer, config)
    display.show(display.addresses_table(system))

    path = deployment_path(out_dir)
    system.save(path)
    display.ok(f"wrote {path}")


def load_live_config(path: Path) -> SystemConfig:
    """The config, checked before the account is unlocked: deploy_system checks it again,
    but a refusal here spares the operator a passphrase prompt for nothing."""
    try:
        config = SystemConfig.from_file(path)
        config.check(live=True)
    except ConfigError as error:
        raise click.ClickException(f"{path}: {error}") from error
    return config
