"""A reader's session in a real browser: JupyterLab, notebook 07, Run All, then the trajectory browser widget.

The widget only exists in a live kernel with a front end, so nbval and papermill never see it work: this test
drives headless Chromium (Debian's `chromium` and `chromium-driver`) through selenium the way a reader does.
It takes minutes, so only `make test-browser` runs it (it sets MINI_O3_BROWSER=1); `make test` skips it.
MINI_O3_BROWSER_TIMEOUT (seconds) bounds Run All; the last screenshot goes to MINI_O3_BROWSER_SHOTS (a folder).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

if os.environ.get("MINI_O3_BROWSER") != "1":
    pytest.skip("the browser test runs under `make test-browser` (it sets MINI_O3_BROWSER=1)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium: pip install -r tests/browser/requirements.txt")

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]  # the checkout: the notebooks find the kit by walking up to pyproject.toml
NOTEBOOK = ROOT / "notebooks" / "07_test_time_turn_scaling.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = Path(os.environ.get("MINI_O3_BROWSER_SHOTS", tempfile.gettempdir()))  # the final (or failing) screenshot

RUN_ALL_TIMEOUT = float(os.environ.get("MINI_O3_BROWSER_TIMEOUT", 3600))  # evaluations from scratch take long on CPU
STEP_TIMEOUT = 600.0  # one question replayed by the model and drawn, on a busy CPU

# JupyterLab settings a reader would not notice but a test trips on: the windowed notebook detaches cells scrolled
# out of view from the page, autosave would write the run into the copy, news and update toasts cover the page.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}

T = TypeVar("T")


@dataclass
class Lab:
    """A running JupyterLab server: where to reach it, and the notebook copy it serves."""

    url: str
    token: str
    notebook: str  # path of the notebook copy, relative to the server's root (the checkout)
    log: Path


def free_port() -> int:
    """A localhost port nobody listens on now (the server is told not to fall back to another one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], T | None], timeout: float, every: float = 1.0) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` when `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def fresh_copy() -> Path:
    """Notebook 07 without its outputs and widget state, next to the original so the kit lookup works.

    The committed notebook is never opened, so never saved; without the recorded outputs, any picture the test
    sees was drawn by the live kernel. The name does not start with two digits, so the kit's own notebook
    globs ignore it.
    """
    nb = json.loads(NOTEBOOK.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb["metadata"].pop("widgets", None)
    copy = NOTEBOOK.with_name(f"_browser_test_{secrets.token_hex(4)}_{NOTEBOOK.name}")
    copy.write_text(json.dumps(nb, indent=1))
    return copy


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (on it the server shuts its kernels down), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab from this interpreter's environment, serving the checkout on a free localhost port.

    User-level Jupyter folders point into `tmp_path`, so a reader's own settings, workspaces or kernels on this
    machine play no part; the kernel is the environment's `python3`. The checkout leads PYTHONPATH, so the
    kernel imports the kit under test whatever the environment has installed.
    """
    copy = fresh_copy()
    checkpoints = copy.parent / ".ipynb_checkpoints"
    had_checkpoints = checkpoints.exists()
    for name, values in LAB_SETTINGS.items():
        path = tmp_path / "lab-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "jupyter.log"
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}"]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"jupyter lab exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as reply:
                return reply.status == 200
        except OSError:
            return False

    try:
        wait_for("jupyter lab to answer", answers, timeout=180)
        yield Lab(url, token, copy.relative_to(ROOT).as_posix(), log)
    finally:
        stop(server)
        copy.unlink(missing_ok=True)
        for leftover in checkpoints.glob(f"{copy.stem}*"):
            leftover.unlink()
        if not had_checkpoints and checkpoints.is_dir() and not any(checkpoints.iterdir()):
            checkpoints.rmdir()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless Chromium through Debian's chromedriver (no driver download), closed whatever happens."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def errors_shown(driver: WebDriver) -> str | None:
    """The first traceback in the notebook's outputs: Run All stops there, so waiting on is pointless."""
    for text in driver.execute_script(
            "return [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.textContent)"):
        if "Traceback (most recent call last)" in text:
            return text
    return None


def menu(driver: WebDriver, title: str, label: str) -> None:
    """Pick a JupyterLab menu item as a reader does: `title` in the menu bar, then the item reading `label`."""
    driver.find_element(By.XPATH, f"//li[contains(@class, 'lm-MenuBar-item')][normalize-space()='{title}']").click()
    item = wait_for(f"{label!r} in the {title} menu", lambda: driver.find_elements(
        By.XPATH, "//div[contains(@class, 'lm-Menu')]//li[contains(@class, 'lm-Menu-item')]"
                  f"[not(contains(@class, 'lm-mod-disabled'))][div[normalize-space()='{label}']]"), timeout=30)
    item[0].click()


def widget_picture(widget: WebElement) -> str | None:
    """The `src` of the picture the widget's output shows (a data: URL), or None while there is none."""
    for img in widget.find_elements(By.CSS_SELECTOR, ".widget-output img"):
        src = img.get_attribute("src") or ""
        if src.startswith("data:image/"):
            return src
    return None


def test_reader_runs_notebook_07_and_browses_trajectories(lab: Lab, browser: WebDriver) -> None:
    """Open notebook 07, Run All, then pick another question and step its turn slider: the picture follows."""
    driver = browser
    started = time.monotonic()
    try:
        driver.get(f"{lab.url}/lab/tree/{lab.notebook}?token={lab.token}")
        # Before its kernel is connected, Run All opens a "Select Kernel" dialog instead of running: wait for the
        # status bar's "Python 3 (ipykernel) | Idle" (the toolbar's indicator reads idle before that).
        wait_for("the notebook's kernel to be connected and idle", lambda: driver.find_elements(By.XPATH, (
            "//*[contains(@class, 'jp-StatusBar-TextItem')][contains(normalize-space(), '| Idle')]"
            "[not(starts-with(normalize-space(), 'No Kernel'))]")), timeout=300)
        menu(driver, "Run", "Run All Cells")

        def widget_drawn() -> WebElement | None:
            if (error := errors_shown(driver)) is not None:
                raise AssertionError(f"a cell failed during Run All:\n{error[-3000:]}")
            if dialogs := [d.text for d in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")]:
                raise AssertionError(f"a dialog stopped Run All: {dialogs}")
            for box in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-vbox"):
                labels = {e.text for e in box.find_elements(By.CSS_SELECTOR, ".widget-dropdown label")}
                if "question" in labels and box.find_elements(By.CSS_SELECTOR, ".widget-slider"):
                    return box if widget_picture(box) else None
            return None

        widget = wait_for("the trajectory browser and its first picture", widget_drawn, RUN_ALL_TIMEOUT, every=5)
        print(f"\nwidget drawn after {time.monotonic() - started:.0f} s")
        wait_for("Run All to finish", lambda: not driver.find_elements(
            By.XPATH, "//div[contains(@class, 'jp-InputPrompt')][normalize-space()='[*]:']"), STEP_TIMEOUT, every=2)
        assert errors_shown(driver) is None, "a cell after the widget failed"

        question = Select(widget.find_element(
            By.XPATH, ".//div[contains(@class, 'widget-dropdown')][label[normalize-space()='question']]//select"))
        labels = [o.text for o in question.options]
        chosen = labels.index(question.first_selected_option.text)
        assert "right" in labels[chosen], f"the widget should open on a right question, not {labels[chosen]!r}"
        turns = [int(m.group(1)) if (m := re.search(r"\((\d+) turns", label)) else 0 for label in labels]
        other = next(i for i, n in enumerate(turns) if i != chosen and n >= 2)  # one with a turn 2 to step to
        before = widget_picture(widget)
        question.select_by_index(other)
        after = wait_for(f"the picture of {labels[other]!r}",
                         lambda: (src := widget_picture(widget)) != before and src, STEP_TIMEOUT)
        readout = widget.find_element(By.CSS_SELECTOR, ".widget-slider .widget-readout")
        assert readout.text.strip() == "1", "picking a question starts at its turn 1"

        handle = widget.find_element(By.CSS_SELECTOR, ".widget-slider .noUi-handle")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
        handle.click()
        handle.send_keys(Keys.ARROW_RIGHT)
        wait_for("the turn slider to read 2", lambda: readout.text.strip() == "2", timeout=60)
        wait_for("the picture of turn 2", lambda: (src := widget_picture(widget)) not in (after, None) and src,
                 STEP_TIMEOUT)
        print(f"question and turn pictures followed after {time.monotonic() - started:.0f} s in all")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", widget)
    finally:
        shot = SHOTS / "browser-final.png"
        try:
            driver.save_screenshot(str(shot))
            print(f"screenshot: {shot}")
        except WebDriverException as error:
            print(f"no screenshot: {error}")
