"""Screenshots of the plan review console for docs/console.md and docs/ko/console.md.

Starts ``qmtl up`` with gateway auth on and headless Debian chromium at 1280×800 (see
``tests/e2e/_browser.py``), walks the review flow with the example request and writes PNGs
under ``docs/img/console/``:

    uv run python scripts/console_screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cli._up import QmtlUp  # noqa: E402
from tests.e2e._browser import browser_missing, start_browser  # noqa: E402

OUT = ROOT / "docs" / "img" / "console"
TOKEN = "docs-token"


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:  # noqa: BLE001 - the page is still loading
            value = None
        if value:
            return value
        time.sleep(0.1)
    sys.exit(f"timed out waiting for {what}")


def main() -> None:
    missing = browser_missing()
    if missing:
        sys.exit(f"cannot run: {missing}")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        up = QmtlUp(Path(tmp) / "up", config={"gateway": {"auth": {"tokens": [TOKEN]}}}).start()
        driver = start_browser(Path(tmp))
        by_id = lambda name: driver.find_element(By.ID, name)  # noqa: E731

        def shot(name: str, element_id: str | None = None) -> None:
            path = OUT / f"{name}.png"
            if element_id is None:
                driver.execute_script("window.scrollTo(0, 0)")
                driver.save_screenshot(str(path))
            else:
                element = by_id(element_id)
                driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)
                element.screenshot(str(path))
            print(f"wrote {path.relative_to(ROOT)}")

        try:
            driver.get(f"{up.gateway_url}/console")
            wait_for(lambda: by_id("signin-state").text == "sign in required", "auth")
            by_id("load-example").click()
            wait_for(lambda: by_id("request-json").get_attribute("value"), "the example")
            by_id("preview").click()
            wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#status [data-code]"), "401")
            shot("01-sign-in-and-401")
            by_id("token").send_keys(TOKEN, Keys.ENTER)
            wait_for(lambda: by_id("signin-state").text == "signed in", "sign in")
            by_id("preview").click()
            wait_for(lambda: "Preview ready" in by_id("status").text, "the preview")
            shot("02-preview", "preview-panel")
            wait_for(lambda: by_id("if-match").get_attribute("value"), "If-Match")
            by_id("approve").click()
            wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#apply-result .ok"), "apply")
            wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#feed li")) >= 2, "feed")
            shot("03-approved", "approve-panel")
            shot("04-live-feed", "feed-panel")
            by_id("new-run-id").click()
            by_id("if-match").clear()
            by_id("if-match").send_keys('"stale-etag"')
            by_id("approve").click()
            wait_for(
                lambda: driver.find_elements(By.CSS_SELECTOR, "#apply-result [data-code]"), "412"
            )
            shot("05-etag-mismatch", "approve-panel")
            by_id("per-strategy").click()
            by_id("dry-run").click()
            wait_for(lambda: "Dry run:" in by_id("orders-summary").text, "the dry run")
            shot("06-dry-run", "execute-panel")
            by_id("submit-live").click()
            by_id("confirm-word").send_keys("SUBMIT")
            driver.execute_script("window.scrollTo(0, 0)")
            shot("07-live-confirmation")
            by_id("confirm-cancel").click()
        finally:
            driver.quit()
            up.stop()


if __name__ == "__main__":
    main()
