"""The lab in a real browser: JupyterLab on a free loopback port, Debian's Chromium driven
through ChromeDriver, a notebook run top to bottom, its output and an ipywidgets control
checked where a learner sees them. The screenshot lands in build/; copying it to docs/
refreshes the README's picture (a test run leaves the checkout as it was)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import labkit

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NOTEBOOK = "notebooks/03-plugin-host.ipynb"
SCREENSHOT = labkit.LAB_ROOT / "build" / "lab-in-chromium.png"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JupyterLab server on the lab's folder; yields its base URL with the token."""
    tmp = tmp_path_factory.mktemp("jupyter")
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={labkit.LAB_ROOT}",
               "--LabApp.expose_app_in_browser=True", f"--LabApp.workspaces_dir={tmp}"]
    if os.getuid() == 0:
        command.append("--allow-root")
    # no autosave (the run must not rewrite the committed notebook), no news fetch (offline)
    for plugin, setting in [("docmanager-extension/plugin", '{"autosave": false}'),
                            ("apputils-extension/notification", '{"fetchNews": "false"}')]:
        path = tmp / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(setting)
    command.append(f"--LabApp.user_settings_dir={tmp / 'settings'}")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    log = (tmp / "server.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("JupyterLab did not start:\n"
                                         + (tmp / "server.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield f"{base}/lab/tree/{NOTEBOOK}?token={token}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    for tool in (CHROMIUM, CHROMEDRIVER):
        assert tool.exists(), (f"{tool} is missing. Fix: apt-get install chromium "
                               "chromium-driver (make test does it when run as root)")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, script: str, seconds: float, what: str) -> Any:
    """Poll a JavaScript expression until it is truthy; fail with ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"after {seconds:g} s in Chromium: {what}")


NOTEBOOK_JS = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
KERNEL_IDLE = (f"{NOTEBOOK_JS} && {NOTEBOOK_JS}.sessionContext.session && "
               f"{NOTEBOOK_JS}.sessionContext.session.kernel && "
               f"{NOTEBOOK_JS}.sessionContext.session.kernel.status === 'idle'")
CODE_CELLS = f"Array.from({NOTEBOOK_JS}.content.model.cells).filter(c => c.type === 'code')"


def test_a_notebook_runs_in_chromium_and_its_output_and_widget_render(
    lab: str, browser: Any,
) -> None:
    from selenium.webdriver.common.by import By

    committed = (labkit.LAB_ROOT / NOTEBOOK).read_bytes()
    browser.get(lab)
    wait_for(browser, f"{KERNEL_IDLE} && document.querySelector('.jp-Notebook .jp-Cell')",
             120, "the notebook did not open with an idle kernel")
    browser.execute_script("return window.jupyterapp.commands.execute("
                           "'notebook:clear-all-cell-outputs');")
    wait_for(browser, f"{CODE_CELLS}.every(c => c.executionCount === null)", 30,
             "clearing the outputs did not reset the execution counts")
    browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    count = wait_for(
        browser, f"{KERNEL_IDLE} && {CODE_CELLS}.every(c => c.executionCount !== null) && "
                 f"{CODE_CELLS}.length", 300, "the notebook's cells did not all run")
    errors = browser.execute_script(
        f"return {CODE_CELLS}.flatMap(c => c.outputs.toJSON())"
        ".filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue);")
    assert errors == [], errors
    # what the learner reads: the host's answer, rendered as output text
    rendered = browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
    assert any("HELLOHELLO" in element.text for element in rendered), "no rendered output"
    # the PluginPanel: an ipywidgets dropdown with the plugins, drawn by the widget manager
    dropdown = wait_for(browser, "document.querySelector('.jp-OutputArea .widget-dropdown select')",
                        60, "no ipywidgets dropdown rendered")
    options = [o.text for o in dropdown.find_elements(By.TAG_NAME, "option")]
    assert "upper" in options and len(options) >= 3, options
    assert dropdown.is_displayed()
    panel = dropdown.find_element(By.XPATH, "ancestor::div[contains(@class,'widget-vbox')][1]")
    assert "upper" in panel.text
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", panel)
    time.sleep(0.5)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT)), "Chromium took no screenshot"
    assert SCREENSHOT.stat().st_size > 10_000
    assert count > 10
    assert (labkit.LAB_ROOT / NOTEBOOK).read_bytes() == committed, "the browser saved the notebook"


def test_chromium_and_its_driver_are_a_matching_pair() -> None:
    chromium = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True)
    driver = subprocess.run([str(CHROMEDRIVER), "--version"], capture_output=True, text=True)
    major = chromium.stdout.split()[1].split(".")[0]
    assert driver.stdout.split()[1].startswith(major + "."), (chromium.stdout, driver.stdout)
