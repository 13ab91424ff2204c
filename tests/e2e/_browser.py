"""Headless Debian chromium driven by selenium, with no downloaded browser or driver.

The binary and the driver are given explicitly (``/usr/bin/chromium``,
``/usr/bin/chromedriver``), so Selenium Manager never looks anything up; ``SE_OFFLINE``
forbids it to try. Used by the console's browser tests, ``bench/console.py`` and
``scripts/console_screenshots.py``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

__all__ = ["CHROMEDRIVER", "CHROMIUM", "browser_missing", "start_browser"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1280, 800)


def browser_missing() -> str | None:
    """Why the browser cannot run here (``None`` when it can)."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).exists() or shutil.which(Path(path).name)):
            return f"{path} is missing (apt-get install {package})"
    return None


def start_browser(download_dir: Path, *, window: tuple[int, int] = WINDOW) -> WebDriver:
    """A headless chromium at ``window`` size whose downloads land in ``download_dir``."""
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={window[0]},{window[1]}",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(download_dir),
            "download.prompt_for_download": False,
        },
    )
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    # Headless chromium only saves downloads where it is told to (CDP).
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)}
    )
    return driver
