"""Print the call tree with gas of one partial liquidation (`ape run trace_liquidation`): where the gas goes."""

from ape import chain

from scripts.bench import scenario_named, setup


def main():
    b = setup()
    receipt = scenario_named("engine.liquidate_partial")(b)
    print("gas_used", receipt.gas_used)
    receipt.show_trace()
    receipt.show_gas_report()
