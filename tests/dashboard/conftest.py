"""Fixtures of the dashboard's browser test: the crash story on the session's system, the page served by
BackgroundServer, and Debian's chromium driven by Selenium (installed here when missing)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from backstop.client.deploy import load_system
from backstop.dashboard.app import BackgroundServer, create_app
from backstop.sim.story import EPILOGUE, STEPS, Cast, Story, run

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
WINDOW = (1400, 1000)
REFRESH_MS = 500  # the page polls faster than `make dashboard` does, so waits stay short
TICK_MS = 5  # a tick shorter than any refresh: the renderer would drop every refresh that a tick overtakes
# A size.json as `make size` writes it (the fields the dashboard reads), with round figures the test can check.
SIZING = {"segments": {"alts": {"target_size": 40_000_000_000, "es_999": 120_000_000_000, "quote_decimals": 6},
                       "majors": {"target_size": 100_000_000_000, "es_999": 80_000_000_000, "quote_decimals": 6}}}


@pytest.fixture(scope="session")
def browser_binaries() -> tuple[Path, Path]:
    """Debian's matched chromium / chromium-driver pair; installed with apt-get when missing (CI runs as root)."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return CHROMIUM, CHROMEDRIVER
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"the dashboard test needs {CHROMIUM} and {CHROMEDRIVER}: run `sudo {INSTALL}` (Debian), "
                    "then run the test again", pytrace=False)
    result = subprocess.run(INSTALL, shell=True, capture_output=True, text=True,
                            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if result.returncode != 0 or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"`{INSTALL}` failed (exit {result.returncode}), so there is no browser to test the dashboard "
                    f"in:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}", pytrace=False)
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture(scope="session")
def browser(browser_binaries):
    chromium, chromedriver = browser_binaries
    options = Options()
    options.binary_location = str(chromium)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(arg)
    # the driver path is given, so Selenium Manager (which would download a driver) never runs
    driver = webdriver.Chrome(service=Service(str(chromedriver)), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def cast(deployer, treasury, lp, keeper, maker, trader, whale, other, attacker, keeper2) -> Cast:
    """The story's roles on the session's accounts: the LP and the keeper are the `lp` and `keeper` fixtures;
    max and carl trade majors, mia and noah (the makers short SOL, the winners), ann (9x) and bob (2.4x) alts."""
    return Cast(deployer, treasury, lp, keeper,
                {"max": maker, "carl": trader, "mia": whale, "ann": other, "noah": attacker, "bob": keeper2})


@pytest.fixture(scope="module")
def story(system, cast) -> Story:
    """The demo's crash story and its epilogue (the LP asks to redeem half its alts shares), on the session's
    system; ape's module isolation rolls it back after this folder."""
    return run(Story(system, cast), [*STEPS, *EPILOGUE])


@pytest.fixture(scope="session")
def sizing() -> dict:
    """The size.json the page reads (a copy: a test cannot change what the page was given)."""
    return json.loads(json.dumps(SIZING))


@pytest.fixture(scope="module")
def size_file(tmp_path_factory, sizing) -> Path:
    path = tmp_path_factory.mktemp("reports") / "size.json"
    path.write_text(json.dumps(sizing))
    return path


@pytest.fixture(scope="module")
def names(story) -> dict[str, str]:
    found = {account.address: name for name, account in story.actors.items()}
    return found | {story.lp.address: "LP", story.keeper.address: "keeper"}


def _serve(system, size_file, names, refresh_ms: int):
    app = create_app(system, reports_dir=size_file.parent, size_path=size_file, names=names, source="test",
                     default_segment="alts", refresh_ms=refresh_ms)
    background = BackgroundServer(app)
    yield background
    background.stop()


@pytest.fixture(scope="module")
def server(story, size_file, names):
    yield from _serve(story.system, size_file, names, REFRESH_MS)


@pytest.fixture(scope="module")
def impatient_server(story, size_file, names):
    """The page asking for a new block every TICK_MS, far less than one refresh takes (dozens of chain reads)."""
    yield from _serve(story.system, size_file, names, TICK_MS)


@pytest.fixture(scope="module")
def deployment_server(story, size_file, tmp_path_factory):
    """`make dashboard --deployment FILE`: the story's system saved as a deployment file, joined with load_system
    (as scripts/dashboard.py does), and no names for the actors."""
    path = tmp_path_factory.mktemp("deployments") / "local.json"
    story.system.save(path)
    yield from _serve(load_system(path), size_file, {}, REFRESH_MS)
