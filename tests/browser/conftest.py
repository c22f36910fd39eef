"""Browser tests: a real JupyterLab driven by Playwright in headless Debian Chromium.

They skip only when /usr/bin/chromium is absent (``apt-get install -y chromium``); CI installs it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from labdriver import chromium, chromium_available, jupyter_lab, new_page, open_and_run  # noqa: E402

NO_CHROMIUM = "headless browser tests need /usr/bin/chromium (apt-get install -y chromium)"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: end-to-end test in a real JupyterLab + headless Chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if not chromium_available():
                item.add_marker(pytest.mark.skip(reason=NO_CHROMIUM))


@pytest.fixture(scope="session")
def chromium_browser():
    """One headless Chromium for the whole session (Playwright's sync API cannot nest)."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def synthetic_page(chromium_browser):
    """The synthetic-data notebook, opened and run once per module; yields the Playwright page."""
    with jupyter_lab(("widgets_synthetic.ipynb",)) as lab:
        page = new_page(chromium_browser)
        try:
            open_and_run(page, lab, "widgets_synthetic.ipynb")
            yield page
        finally:
            page.context.close()
