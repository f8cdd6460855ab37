"""The dashboard in a real headless browser (Debian's chromium via Selenium), served by BackgroundServer against the
session's system after the demo's crash story: what the page shows equals what the chain's views and logs say.

Shown figures are parsed back into integer units and compared with contract views read here, not through the
dashboard's data layer, so a wrong read and a wrong format both fail."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from ape import chain
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from backstop.core.units import quote

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "reports" / "dashboard.png"
WAIT = 60  # seconds for the page to show a figure (a refresh takes under a second; generous for a loaded CI box)
WATERFALL = ("Cover", "Draw", "Liquidated", "Deleveraged", "BadDebtSettled", "BadDebtCovered")


# ---------------------------------------------------------------- helpers


def units(text: str, decimals: int) -> int:
    """'26,047.000000' -> 26047000000: a shown amount back in integer units (every digit is shown)."""
    return int(Decimal(text.replace(",", "")) * 10**decimals)


def text_of(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def wait_for(browser, element_id: str, predicate=lambda text: text not in ("", "…")) -> str:
    """The element's text once `predicate` holds (the first refresh replaces the '…' placeholders)."""
    deadline = time.monotonic() + WAIT
    text = None
    while time.monotonic() < deadline:
        elements = browser.find_elements(By.ID, element_id)
        text = elements[0].text if elements else None
        if text is not None and predicate(text):
            return text
        time.sleep(0.1)
    errors = [e.text for e in browser.find_elements(By.ID, "read-error")]
    raise AssertionError(f"#{element_id} never matched in {WAIT} s (last text: {text!r}; page error: {errors})")


def open_page(browser, server, segment: str = "alts") -> None:
    browser.get(server.url)
    wait_for(browser, "pool-label", lambda text: text == "alts")
    if segment != "alts":
        choose_segment(browser, segment)


def choose_segment(browser, label: str) -> None:
    """Open the dropdown and click the option, as a user does."""
    browser.find_element(By.ID, "segment").click()
    options = WebDriverWait(browser, WAIT).until(
        lambda d: [o for o in d.find_elements(By.CSS_SELECTOR, "[role='option']") if o.text.strip() == label])
    options[0].click()
    wait_for(browser, "pool-label", lambda text: text == label)


def enter_lp(browser, text: str) -> None:
    box = browser.find_element(By.ID, "lp-address")
    box.clear()
    box.send_keys(text, Keys.ENTER)  # the input is debounced: Enter (or leaving it) sends the value


def table_rows(browser, table_id: str) -> list[list[str]]:
    rows = browser.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def logged_events(system, label: str) -> list[tuple[int, str]]:
    """(block, event name) of every waterfall event of the segment, straight from the logs."""
    segment, pool = system.segments[label], system.pools[label]
    markets = {m.id for m in system.markets.values() if m.segment == segment}
    stop = chain.blocks.head.number + 1
    logs = [*pool.Cover.range(0, stop),
            *[x for x in system.backstop.Draw.range(0, stop) if x.member == pool.address],
            *[x for x in system.engine.Liquidated.range(0, stop) if int(x.market) in markets],
            *[x for x in system.engine.Deleveraged.range(0, stop) if int(x.market) in markets],
            *[x for x in system.engine.BadDebtSettled.range(0, stop) if int(x.segment) == segment],
            *[x for x in system.vault.BadDebtCovered.range(0, stop) if int(x.segment) == segment]]
    return sorted((int(x.block_number), x.event_name) for x in logs)


# ---------------------------------------------------------------- tests


def test_pool_figures_equal_the_pool_views(browser, server, story):
    """NAV, totalAssets, assets per share and the share supply of the alts pool, as its views return them."""
    pool, decimals = story.system.pools["alts"], story.system.decimals
    open_page(browser, server)
    assert units(wait_for(browser, "nav"), decimals) == int(pool.managed_assets())
    assert units(text_of(browser, "total-assets"), decimals) == int(pool.totalAssets())
    assert units(text_of(browser, "unvested"), decimals) == int(pool.unvested_income())
    assert units(text_of(browser, "aps"), decimals) == int(pool.assets_per_share())
    assert text_of(browser, "pool-address") == pool.address
    assert int(text_of(browser, "head-block").replace(",", "")) == chain.blocks.head.number


def test_crash_shows_in_the_figures(browser, server, story):
    """After the story the alts pool paid its whole NAV and the backstop the rest: the page says so, to the unit."""
    decimals = story.system.decimals
    requested = sum(int(c["requested"]) for c in story.ledger.covers)
    by_pool = sum(int(c["paid_by_pool"]) for c in story.ledger.covers)
    by_backstop = sum(int(c["paid_by_backstop"]) for c in story.ledger.covers)
    open_page(browser, server)
    assert units(wait_for(browser, "paid-by-pools"), decimals) == by_pool + by_backstop == requested
    assert f"pool {by_pool / 10**decimals:,.6f}" in text_of(browser, "paid-note")
    assert f"backstop {by_backstop / 10**decimals:,.6f}" in text_of(browser, "paid-note")
    unpaid, socialized = text_of(browser, "socialized").split(" / ")
    assert units(unpaid, decimals) == sum(int(b["unpaid"]) for b in story.ledger.bad_debt) == 0
    assert units(socialized, decimals) == 0 and story.ledger.adl == 0
    assert units(text_of(browser, "headroom"), decimals) == int(story.system.backstop.draw_capacity(
        story.system.pools["alts"]))
    assert units(text_of(browser, "adl-distance"), decimals) == int(story.system.pools["alts"].cover_reach())


def test_waterfall_log_lists_every_event_in_the_logs(browser, server, story):
    expected = logged_events(story.system, "alts")
    kinds = {kind for _, kind in expected}
    assert {"Cover", "Draw", "Liquidated", "BadDebtCovered"} <= kinds  # the story's crash went through them
    open_page(browser, server)
    wait_for(browser, "events-table")
    shown = sorted((int(row[0].replace(",", "")), row[3]) for row in table_rows(browser, "events-table"))
    assert shown == expected
    assert {row[3] for row in table_rows(browser, "events-table")} <= set(WATERFALL)
    cover = next(row for row in table_rows(browser, "events-table") if row[3] == "Cover")
    assert "unpaid 0.000000" in cover[5]  # what the pools could not pay is always shown, zero included


def test_coverage_is_nav_over_the_size_target(browser, server, story, sizing):
    """Coverage = pool NAV / target_size of size.json; the stressed loss is its es_999 (the test's size.json)."""
    decimals = story.system.decimals
    open_page(browser, server, "majors")
    entry = sizing["segments"]["majors"]
    nav = int(story.system.pools["majors"].managed_assets())
    assert wait_for(browser, "coverage") == f"{Decimal(nav) / Decimal(entry['target_size']) * 100:,.2f}%"
    assert units(text_of(browser, "stressed-loss"), decimals) == entry["es_999"]


def test_segment_dropdown_switches_the_view(browser, server, story):
    """From alts (the crash) to majors (untouched): the pool, its figures and its (empty) waterfall change."""
    majors, decimals = story.system.pools["majors"], story.system.decimals
    open_page(browser, server)
    alts_nav = wait_for(browser, "nav")
    choose_segment(browser, "majors")
    assert wait_for(browser, "pool-address", lambda text: text == majors.address)
    nav = wait_for(browser, "nav", lambda text: text != alts_nav)
    assert units(nav, decimals) == int(majors.managed_assets()) == quote(50_000, decimals)
    assert "No cover, draw, liquidation or ADL" in text_of(browser, "events")
    assert logged_events(story.system, "majors") == []


def test_nearest_liquidation_is_ordered_by_equity_over_mm(browser, server, story):
    """Majors' accounts with positions (max and carl), lowest equity / MM first, as VaultLens.health_of reports."""
    segment = story.system.segments["majors"]
    owners = [story.actors["max"], story.actors["carl"], story.keeper]
    healths = story.system.lens.health_of(owners, segment)
    expected = sorted(((Decimal(int(h.equity)) / Decimal(int(h.mm)), name) for name, h in
                       zip(("max", "carl", "keeper"), healths) if int(h.mm) > 0))
    open_page(browser, server, "majors")
    wait_for(browser, "nearest-table")
    shown = [(Decimal(row[1]), row[0]) for row in table_rows(browser, "nearest-table")]
    assert [name for _, name in shown] == [name for _, name in expected]
    assert [ratio for ratio, _ in shown] == [ratio.quantize(Decimal("0.0001"), "ROUND_HALF_EVEN")
                                             for ratio, _ in expected]


def test_redemption_queue_shows_the_lps_request(browser, server, story, lp):
    pool = story.system.pools["alts"]
    shares, unlock_at, expires_at = (int(x) for x in pool.pending_request(lp))
    assert shares == story.redeem_requests["alts"] > 0
    open_page(browser, server)
    wait_for(browser, "redemption-table")
    (row,) = table_rows(browser, "redemption-table")
    assert row[0] == "LP"
    assert units(row[1], int(pool.decimals())) == shares
    assert row[3] == _utc(unlock_at) and row[4] == _utc(expires_at)
    assert row[5] == "cooling"  # the cooldown has not passed on the frozen clock


def test_lp_address_shows_that_lps_position(browser, server, story, lp):
    pool, backstop, decimals = story.system.pools["alts"], story.system.backstop, story.system.decimals
    open_page(browser, server)
    enter_lp(browser, lp.address.lower())  # any case is an address; shown back checksummed
    assert wait_for(browser, "lp-owner") == lp.address
    share_decimals = int(pool.decimals())
    assert units(text_of(browser, "lp-shares"), share_decimals) == int(pool.balanceOf(lp))
    assert units(text_of(browser, "lp-assets"), decimals) == int(pool.convertToAssets(pool.balanceOf(lp)))
    assert text_of(browser, "lp-state") == "cooling"
    assert units(text_of(browser, "lp-requested"), share_decimals) == story.redeem_requests["alts"]
    assert units(text_of(browser, "lp-backstop-shares"), int(backstop.decimals())) == int(backstop.balanceOf(lp))
    assert units(text_of(browser, "lp-backstop-assets"), decimals) == int(
        backstop.convertToAssets(backstop.balanceOf(lp)))
    assert text_of(browser, "lp-error") == ""


@pytest.mark.parametrize("bad", ["0x1234", "not an address", "0x" + "g" * 40])
def test_bad_lp_address_is_rejected_with_a_clear_message(browser, server, story, bad):
    open_page(browser, server)
    enter_lp(browser, bad)
    message = wait_for(browser, "lp-error", lambda text: text != "")
    assert message == f"not an address: {bad!r} (expected 0x followed by 40 hexadecimal digits)"
    assert browser.find_elements(By.ID, "lp-table") == []  # no position shown for it
    assert units(text_of(browser, "nav"), story.system.decimals) == int(story.system.pools["alts"].managed_assets())


def test_figures_follow_new_blocks(browser, server, story, lp):
    """An LP deposit lands in a new block: the open page shows the new NAV without a reload (dcc.Interval)."""
    pool, token, decimals = story.system.pools["majors"], story.system.token, story.system.decimals
    open_page(browser, server, "majors")
    before = units(wait_for(browser, "nav"), decimals)
    amount = quote(1_234, decimals)
    token.mint(lp, amount, sender=lp)
    token.approve(pool, amount, sender=lp)
    receipt = pool.deposit(amount, lp, sender=lp)
    # a deposit first sweeps the segment's accrued fees into the pool (majors' fills paid some), which passes the
    # backstop its share: what the pool keeps of that income is in the NAV too
    kept = sum(int(log.amount) - int(log.to_backstop) for log in receipt.decode_logs()
               if log.event_name == "IncomeNotified")
    head = chain.blocks.head.number
    wait_for(browser, "head-block", lambda text: int(text.replace(",", "")) == head)
    assert units(text_of(browser, "nav"), decimals) == int(pool.managed_assets()) == before + amount + kept


def test_refresh_slower_than_the_tick_is_still_shown(browser, impatient_server, story, lp):
    """Regression (CI run of 2026-12-02): a refresh slower than the page's tick was never shown, because the
    renderer drops the result of a callback asked again while it runs; the LP panel timed out on a loaded machine.
    A tick now only asks for a refresh once the last one has finished, so the figures and the LP's position show
    with a 5 ms tick."""
    pool = story.system.pools["alts"]
    open_page(browser, impatient_server)
    assert units(wait_for(browser, "nav"), story.system.decimals) == int(pool.managed_assets())
    enter_lp(browser, lp.address)
    assert wait_for(browser, "lp-owner") == lp.address
    assert units(text_of(browser, "lp-shares"), int(pool.decimals())) == int(pool.balanceOf(lp))
    assert text_of(browser, "read-error") == ""


def test_deployment_file_shows_the_same_figures(browser, deployment_server, story):
    """`make dashboard --deployment FILE` joins a saved deployment (load_system): the same pool, NAV and waterfall
    as the chain's views and logs; the actors, unknown to the file, show as addresses."""
    pool, decimals = story.system.pools["alts"], story.system.decimals
    open_page(browser, deployment_server)
    assert units(wait_for(browser, "nav"), decimals) == int(pool.managed_assets())
    assert text_of(browser, "pool-address") == pool.address
    wait_for(browser, "events-table")
    shown = sorted((int(row[0].replace(",", "")), row[3]) for row in table_rows(browser, "events-table"))
    assert shown == logged_events(story.system, "alts")
    accounts = {row[4] for row in table_rows(browser, "events-table")} - {"", "—"}
    assert not accounts & (set(story.actors) | {"LP", "keeper"})  # the file names contracts only, not actors
    assert any(account.startswith("0x") for account in accounts)


def test_screenshot_is_written(browser, server, story, lp):
    """reports/dashboard.png (the README's screenshot): the crashed segment with the LP's position, whole page."""
    open_page(browser, server)
    enter_lp(browser, lp.address)
    wait_for(browser, "lp-owner")
    wait_for(browser, "events-table")
    window = browser.get_window_size()
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(window["width"], height)
    try:
        SCREENSHOT.parent.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))
    finally:
        browser.set_window_size(window["width"], window["height"])
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
