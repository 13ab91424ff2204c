"""The plan review console in a real browser (headless Debian chromium + selenium) against a
real ``qmtl up`` with gateway auth on: sign in, load the example, preview, approve, see the
event in the live feed (also after a reload), dry-run execute, download the CSV and compare
it with the API's orders; a 401 and a 412 are shown to the user with what to do.
One ``qmtl up`` and one browser are shared by the module.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.cli._up import QmtlUp

from ._browser import browser_missing, start_browser

pytestmark = [pytest.mark.e2e]

TOKEN = "console-e2e-token"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rebalance.json"
WAIT = 30.0
T = TypeVar("T")

if browser_missing():
    pytest.skip(
        f"the browser tests need Debian's chromium: {browser_missing()}", allow_module_level=True
    )

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QmtlUp]:
    config = {"gateway": {"auth": {"tokens": [TOKEN]}}}
    server = QmtlUp(tmp_path_factory.mktemp("console-up"), config=config).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[WebDriver]:
    driver = start_browser(downloads)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], T], *, what: str, timeout: float = WAIT) -> T:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:  # noqa: BLE001 - selenium raises several kinds while loading
            last = exc
        else:
            if value:
                return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


def text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def fresh_console(driver: WebDriver, up: QmtlUp) -> None:
    """Open the console with an empty session (no token, no feed position)."""
    driver.get(f"{up.gateway_url}/console")
    driver.execute_script("window.sessionStorage.clear()")
    driver.get(f"{up.gateway_url}/console")
    wait_for(lambda: "schema v" in text(driver, "capabilities"), what="capabilities")


def sign_in(driver: WebDriver) -> None:
    field = driver.find_element(By.ID, "token")
    field.clear()
    field.send_keys(TOKEN, Keys.ENTER)  # keyboard only: the form submits on Enter
    wait_for(lambda: text(driver, "signin-state") == "signed in", what="signed in")


def load_example_and_preview(driver: WebDriver) -> None:
    driver.find_element(By.ID, "load-example").click()
    wait_for(
        lambda: driver.find_element(By.ID, "request-json").get_attribute("value"),
        what="the example",
    )
    driver.find_element(By.ID, "preview").click()
    wait_for(lambda: "Preview ready" in text(driver, "status"), what="the preview")


def api(up: QmtlUp, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{up.gateway_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_a_401_is_shown_with_what_to_do(browser: WebDriver, up: QmtlUp) -> None:
    fresh_console(browser, up)
    wait_for(lambda: text(browser, "signin-state") == "sign in required", what="auth detected")
    load_example_and_preview_unsigned = browser.find_element(By.ID, "load-example")
    load_example_and_preview_unsigned.click()
    wait_for(
        lambda: browser.find_element(By.ID, "request-json").get_attribute("value"),
        what="the example",
    )
    browser.find_element(By.ID, "preview").click()
    message = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, "#status [data-code]"),
        what="an error message",
    )
    assert message.get_attribute("data-code") == "E_UNAUTHORIZED"
    assert "HTTP 401" in message.text and "Sign in with a valid token" in message.text
    wait_for(lambda: "sign in" in text(browser, "feed-state"), what="the feed refused")


def test_review_approve_feed_execute_and_csv(
    browser: WebDriver, up: QmtlUp, downloads: Path
) -> None:
    fresh_console(browser, up)
    sign_in(browser)
    load_example_and_preview(browser)
    request = json.loads(EXAMPLE.read_text())

    # Preview: one card per world, explain rows equal to the API's explain document.
    explained = api(up, "/rebalancing/explain", request)
    cards = browser.find_elements(By.CSS_SELECTOR, "#worlds .world")
    assert sorted(c.get_attribute("data-world") for c in cards) == sorted(explained["per_world"])
    rows = browser.find_elements(By.CSS_SELECTOR, "#explain-table tbody tr")
    assert len(rows) == sum(len(w["keys"]) for w in explained["per_world"].values())
    assert "traded" in rows[0].text
    plan_rows = browser.find_elements(By.CSS_SELECTOR, "#plan-table tbody tr")
    plan = api(up, "/rebalancing/plan", request)
    assert len(plan_rows) == (
        sum(len(p["deltas"]) for p in plan["per_world"].values()) + len(plan["global_deltas"])
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#alpha-table tbody tr")  # v2 metrics

    # Approve: recorded, one event per world, then both events in the live feed.
    run_id = browser.find_element(By.ID, "run-id").get_attribute("value")
    assert run_id
    wait_for(
        lambda: browser.find_element(By.ID, "if-match").get_attribute("value"),
        what="the If-Match from /allocations",
    )
    browser.find_element(By.ID, "approve").click()
    result = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, "#apply-result .msg.ok"),
        what="the apply result",
    )
    assert result.get_attribute("data-outcome") == "recorded"
    assert f"Recorded run {run_id}: 2 events published" in result.text
    selector = f'#feed li[data-run="{run_id}"]'
    wait_for(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, selector)) == 2,
        what="two events in the live feed",
    )

    # Execute: dry run, then the CSV equals the API's orders.
    browser.find_element(By.ID, "dry-run").click()
    wait_for(lambda: "Dry run:" in text(browser, "orders-summary"), what="the dry run")
    orders = api(up, "/rebalancing/execute", request)
    assert orders["submitted"] is False
    browser.find_element(By.ID, "download-csv").click()
    target = downloads / "qmtl-orders.csv"
    wait_for(target.exists, what="the CSV download")
    with target.open() as handle:
        downloaded = list(csv.DictReader(handle))
    expected = [
        {
            "scope": "per_world",
            "world_id": world,
            "strategy_id": "",
            "venue": o.get("venue", ""),
            "symbol": o["symbol"],
            "side": o["side"],
            "quantity": o["quantity"],
            "reduce_only": str(o.get("reduce_only", "")).lower(),
            "time_in_force": o["time_in_force"],
            "client_order_id": o["client_order_id"],
        }
        for world, world_orders in orders["orders_per_world"].items()
        for o in world_orders
    ]
    got = [
        {**{k: v for k, v in row.items() if k != "notional"}, "quantity": float(row["quantity"])}
        for row in downloaded
    ]
    assert got == expected
    assert all(float(row["notional"]) > 0 for row in downloaded)

    # Live submit: only after typing the confirmation word; sent with the live-guard header.
    browser.find_element(By.ID, "submit-live").click()
    confirm = browser.find_element(By.ID, "confirm-submit")
    assert not confirm.is_enabled()
    browser.find_element(By.ID, "confirm-word").send_keys("SUBMIT")
    assert confirm.is_enabled()
    confirm.click()
    wait_for(lambda: text(browser, "orders-summary").startswith("Submitted"), what="submit")
    assert "batches" in text(browser, "orders-summary")

    # Reload: the feed comes back from the session and resumes after its last seq.
    browser.refresh()
    wait_for(lambda: "resumed from seq" in text(browser, "feed-state"), what="resume")
    assert len(browser.find_elements(By.CSS_SELECTOR, selector)) == 2  # no duplicates


def test_a_412_is_shown_with_what_to_do(browser: WebDriver, up: QmtlUp) -> None:
    fresh_console(browser, up)
    sign_in(browser)
    load_example_and_preview(browser)
    browser.find_element(By.ID, "new-run-id").click()
    stale = browser.find_element(By.ID, "if-match")
    wait_for(lambda: stale.get_attribute("value"), what="the If-Match")
    stale.clear()
    stale.send_keys('"stale-etag"')
    browser.find_element(By.ID, "approve").click()
    message = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, "#apply-result [data-code]"), what="the 412"
    )
    assert message.get_attribute("data-code") == "E_ETAG_MISMATCH"
    assert "HTTP 412" in message.text and "Refresh from /allocations" in message.text


def test_positions_csv_and_allocations_build_the_request(browser: WebDriver, up: QmtlUp) -> None:
    fresh_console(browser, up)
    browser.find_element(By.ID, "tab-csv").click()
    browser.find_element(By.ID, "csv-text").send_keys(
        "world_id,strategy_id,symbol,qty,mark,venue\nw1,s1,BTC,2,100,x\nw1,s2,ETH,-3,10,\n"
    )
    browser.find_element(By.ID, "f-before").send_keys("w1=0.4")
    browser.find_element(By.ID, "f-after").send_keys("w1=0.2")
    browser.find_element(By.ID, "f-dust").send_keys("5")
    browser.find_element(By.ID, "build-request").click()
    built = json.loads(browser.find_element(By.ID, "request-json").get_attribute("value"))
    assert built == {
        "total_equity": 1000000,
        "world_alloc_before": {"w1": 0.4},
        "world_alloc_after": {"w1": 0.2},
        "min_trade_notional": 5,
        "schema_version": 2,
        "positions": [
            {
                "world_id": "w1",
                "strategy_id": "s1",
                "symbol": "BTC",
                "qty": 2,
                "mark": 100,
                "venue": "x",
            },
            {
                "world_id": "w1",
                "strategy_id": "s2",
                "symbol": "ETH",
                "qty": -3,
                "mark": 10,
                "venue": None,
            },
        ],
    }


def test_a_new_epoch_replays_the_history_instead_of_resuming(
    browser: WebDriver, up: QmtlUp
) -> None:
    # An event to replay: apply the example through the API.
    request = json.loads(EXAMPLE.read_text())
    applied = api(up, "/rebalancing/apply", {**request, "run_id": "epoch-test"})
    assert applied["run_id"] == "epoch-test"
    fresh_console(browser, up)
    sign_in(browser)  # the feed connects: the whole history, and the gateway's epoch is kept
    selector = '#feed li[data-run="epoch-test"]'
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, selector)) == 2,
             what="the history")
    epoch = browser.execute_script("return sessionStorage.getItem('qmtl.console.epoch');")
    assert epoch
    resume_at = browser.execute_script(
        "return Number(sessionStorage.getItem('qmtl.console.since_seq'));")
    assert resume_at > 0
    # Same position, but recorded under another epoch (as after a restart of the gateway):
    # it means nothing to this gateway, which replays its history instead of resuming.
    browser.execute_script(
        "sessionStorage.setItem('qmtl.console.epoch', 'an-epoch-of-another-run');"
        "sessionStorage.setItem('qmtl.console.feed', '[]');"
    )
    browser.refresh()
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, selector)) == 2,
             what="the replayed history")
    assert browser.execute_script(
        "return sessionStorage.getItem('qmtl.console.epoch');") == epoch
    # Within the gateway's epoch the same position resumes: nothing is replayed.
    browser.execute_script("sessionStorage.setItem('qmtl.console.feed', '[]');")
    browser.refresh()
    wait_for(lambda: "resumed from seq" in text(browser, "feed-state"), what="resume")
    time.sleep(1.0)  # a replay would arrive right after `subscribed`
    assert browser.find_elements(By.CSS_SELECTOR, selector) == []
