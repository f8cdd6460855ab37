"""Takeover vs ADL-only in the stress simulator (docs/stress.md, "Liquidator of last resort vs ADL-only"): both
arms over the same path and seed, the takeover arm takes the unsold auctions over and unwinds them, ADL-only
deleverages the winners instead, and the comparison writes its tables and figure."""

import csv

import pytest

from backstop.sim.paths import gap
from backstop.sim.stress import run
from backstop.sim.takeover_compare import ARMS, BASELINE, compare

# Two longs at 6-9x on 5,000 each meet a -20% gap: bankrupt, and their whole positions (about 25,000-36,000) are
# beyond a keeper whose 1,500 of margin carries 15,000; it flags them, and the auction (600 s) ends two oracle
# updates (300 s apart) later. The backstop (500,000) may hold 50,000 per market, 100,000 in all.
CRAFTED = dict(traders="fixed", n_traders=2, trader_collateral=5_000, leverage=(6.0, 9.0), long_share=1.0,
               latency=0, pool_deposit=60_000, backstop_deposit=500_000, keeper_collateral=1_500, flagger=True,
               aftermath=3_600)
PATH = gap(0.2, before=1, after=3, dt=300)


@pytest.fixture
def fast_reverts(monkeypatch):
    """What stress.quiet_reverts does on a sweep worker, undone after the test: no source traceback per revert
    (ape maps every revert onto the Vyper source, seconds each) and no printed call trace."""
    import ape.exceptions
    import ape_ethereum.trace

    monkeypatch.setattr(ape.exceptions, "_get_ape_traceback_from_tx", lambda txn: None)
    monkeypatch.setattr(ape_ethereum.trace.Trace, "show", lambda self, *args, **kwargs: None)


def on_this_chain(specs):
    """A runner for compare: each run on the test chain, a fresh deployment per run."""
    return [run(spec) for spec in specs]


def test_takeover_takes_the_unsold_auctions_that_adl_only_deleverages(tmp_path, fast_reverts):
    comparison = compare(on_this_chain, out_dir=tmp_path, paths=[(PATH, 1)], crowd=CRAFTED)
    assert len(comparison.results) == 2 and not any(r.failed for r in comparison.results), \
        [r.failed for r in comparison.results]
    (took, adl), = comparison.pairs  # the same path and seed in both arms
    assert (took.path, took.seed, took.takeover) == (adl.path, adl.seed, True) and not adl.takeover
    assert took.label == f"{PATH.name}/takeover" and adl.label == f"{PATH.name}/{BASELINE}"

    # ADL-only: the auctions end unsold and ADL closes the maker's winning short against them
    assert adl.takeovers == 0 and adl.adl_events > 0 and adl.winners_hit > 0 and adl.adl_notional > 0
    # takeover: the liquidator takes them instead, within its caps, and the keeper unwinds the inventory
    assert took.takeovers > 0 and took.takeover_notional > 0 and took.inventory_peak > 0
    assert took.adl_events < adl.adl_events and took.adl_notional < adl.adl_notional
    assert took.adl_socialized <= adl.adl_socialized
    assert took.unwound and 0 < took.unwind_seconds <= took.aftermath_seconds + PATH.dt * len(PATH)
    assert took.inventory[-1][1] == 0  # flat at the end
    assert took.backstop_drawdown >= 0 and adl.backstop_drawdown >= 0
    # the same deficits reach the pools either way; both runs keep every invariant and pay every winner
    assert took.bad_debt > 0 and adl.bad_debt > 0
    for r in (took, adl):
        assert r.invariant_errors == 0, r.first_error
        assert r.winners_unpaid == 0

    with open(comparison.files["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [row["arm"] for row in rows] == list(ARMS)
    assert int(rows[0]["takeovers"]) == took.takeovers and int(rows[1]["adl_events"]) == adl.adl_events
    assert float(rows[0]["adl_events_vs_adl_only"]) == pytest.approx(took.adl_events / adl.adl_events - 1)
    with open(comparison.files["runs"]) as f:
        runs = list(csv.DictReader(f))
    assert [(row["path"], row["seed"], row["takeover"]) for row in runs] == [
        (PATH.name, "1", "True"), (PATH.name, "1", "False")]
    assert comparison.files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
