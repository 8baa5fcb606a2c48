"""End to end, as a student: JupyterLab in headless Chromium runs the notebooks,
and the explorers react to their real controls.

Needs Debian's ``chromium`` (``apt-get install chromium``; .ci/run installs it)
and Python Playwright (a dev dependency). Playwright cannot download its own
browser here, so it drives the system one through ``executable_path``.
Screenshots go to ``catdog-browser-screenshots/`` in the system's temporary folder.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from catdog_lib import data
from conftest import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found: "
                                "`apt-get install chromium` to run the browser test")
SHOTS = Path(tempfile.gettempdir()) / "catdog-browser-screenshots"  # outside the checkout
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1, random port and token, in a copy of
    the notebooks, with the smoke profile; shut down and reaped afterwards."""
    data.prepare_small_dataset("toy")  # notebook 04 trains on it
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    # JupyterLab 4 may leave cells scrolled out of view out of the page
    # ("windowing"); the test needs every cell's widget in the page to find it.
    settings = root / "settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        '{"windowingMode": "none"}')
    # Nor should the offer of Jupyter news pop up over the page it tests.
    (settings / "apputils-extension").mkdir()
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false"}')
    port, token = free_port(), uuid.uuid4().hex
    env = {**os.environ, "CATDOG_PROFILE": "smoke", "CATDOG_UNATTENDED": "1",
           "JUPYTERLAB_SETTINGS_DIR": str(root / "settings")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
         "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root / 'notebooks'}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                os.killpg(server.pid, signal.SIGKILL)
                pytest.fail("JupyterLab did not start")
            time.sleep(0.5)
    yield base, token
    request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
    try:
        urllib.request.urlopen(request, timeout=10)
        server.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(server.pid, signal.SIGKILL)  # anything left of the group: kernels included
    except ProcessLookupError:
        pass
    server.wait(timeout=10)
    assert server.poll() is not None


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def menu(page, top, item, until):
    """Choose ``top`` > ``item`` from the menu bar until the JavaScript
    condition ``until`` holds. A click that lands while the page settles
    can be lost, so each try waits 20 s and a lost one is retried."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        page.click(f".lm-MenuBar-itemLabel:text-is('{top}')")
        page.click(f".lm-Menu-itemLabel:text-is('{item}')")
        try:
            page.wait_for_function(until, timeout=20_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")


def run_all(browser, lab, name, timeout_s, through=None):
    """Open a notebook and run it from the Run menu: every cell, or with
    ``through`` only the cells down to the first one whose code holds that
    text. Wait until done."""
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # A workspace of its own, reset: JupyterLab would otherwise reopen earlier tabs.
    page.goto(f"{base}/lab/workspaces/{name[:2]}/tree/{name}?reset&token={token}")
    panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"
    page.wait_for_selector(f"{panel} .jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(f"{panel} .jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=90_000)
    # The menu's notebook commands stay disabled until the notebook is the
    # shell's current widget, which a page without focus may not have made it.
    page.click(f"{panel} .jp-CodeCell .jp-InputPrompt >> nth=0")
    # The committed outputs (and their prompt numbers) go first, so that the
    # numbers seen below can only come from this run.
    prompts = "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
    menu(page, "Edit", "Clear Outputs of All Cells",
         until=f"() => !{prompts}.some(p => /\\d/.test(p.textContent))")
    if through is None:
        item, last = "Run All Cells", -1
    else:
        code = page.locator(f"{panel} .jp-Notebook .jp-CodeCell")
        last = code.evaluate_all("(cells, text) => cells.findIndex("
                                 "c => c.querySelector('.cm-content').textContent.includes(text))",
                                 through)
        assert last >= 0, f"{name}: no cell holds {through!r}"
        # The Run menu runs every cell above the selected one: select the next.
        code.nth(last).locator("xpath=following-sibling::div[contains(@class, 'jp-Cell')][1]").click()
        item = "Run All Above Selected Cell"
    menu(page, "Run", item,
         until=f"() => {prompts}.some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))")
    # Done when no prompt shows [*] and the last cell to run has a number.
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name[:2]}_started.png")
    page.wait_for_function(
        """last => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                .map(p => p.textContent.trim());
            return prompts.length && !prompts.some(t => t.includes('*'))
                && /\\[\\d+\\]/.test(prompts.at(last));
        }""", arg=last, timeout=timeout_s * 1000)
    return page


def assert_no_errors(page, name):
    errors = page.locator("[data-mime-type='application/vnd.jupyter.error']")
    assert errors.count() == 0, f"{name}: {errors.first.inner_text()[:500]}"


def open_explorer(browser, lab, name, control, timeout_s, through=None):
    """Run a notebook (through the cell holding ``through``, if given), check it
    has no errors, and find the explorer holding ``control``: the page, the
    explorer, its picture, and the picture's bytes. The page is screenshot as found."""
    page = run_all(browser, lab, name, timeout_s, through)
    assert_no_errors(page, name[:2])
    explorer = page.locator(f".widget-vbox:has({control}):has(img.widget-image)").first
    explorer.scroll_into_view_if_needed()
    picture = explorer.locator("img.widget-image")
    picture.wait_for(state="visible", timeout=30_000)
    page.screenshot(path=SHOTS / f"{name[:2]}_explorer_before.png")
    return page, explorer, picture, picture.screenshot()


def assert_picture_changes(picture, before, what):
    deadline = time.time() + 30
    while picture.screenshot() == before and time.time() < deadline:
        time.sleep(0.5)
    assert picture.screenshot() != before, f"the {what} did not change"


def test_notebook_01_explorer_reacts_in_the_browser(browser, lab):
    page, explorer, picture, before = open_explorer(
        browser, lab, "01_convolution_intuition.ipynb", ".widget-dropdown", timeout_s=240)
    explorer.locator(".widget-dropdown select").select_option(label="blur")
    assert_picture_changes(picture, before, "feature map")
    shape = explorer.locator(".widget-label", has_text="feature map")
    assert "148x" in shape.inner_text()
    explorer.locator(".widget-toggle-button", has_text="2").click()  # stride 2
    page.wait_for_function("el => el.textContent.includes('74x')", arg=shape.element_handle(),
                           timeout=30_000)
    page.screenshot(path=SHOTS / "01_explorer_after.png")
    assert_no_errors(page, "01")
    page.close()


def test_notebook_04_augmentation_explorer_reacts_in_the_browser(browser, lab):
    page, explorer, picture, before = open_explorer(
        browser, lab, "04_augmentation_and_dropout.ipynb", ".widget-slider", timeout_s=300,
        # Training and the test set follow the explorer; nbval and test_precisions run them.
        through="widgets.augmentation_explorer(")
    handle = explorer.locator(".noUi-handle").first  # the rotation slider
    handle.focus()
    for _ in range(4):
        handle.press("ArrowRight")
    assert_picture_changes(picture, before, "augmented images")
    page.screenshot(path=SHOTS / "04_explorer_after.png")
    assert_no_errors(page, "04")
    page.close()


def test_notebook_05_activation_explorer_reacts_in_the_browser(browser, lab):
    page, explorer, picture, before = open_explorer(
        browser, lab, "05_what_the_convnet_learned.ipynb", ".widget-dropdown", timeout_s=300)
    # The caption, not the slider's "channel" label; the layer names are the model's.
    caption = explorer.locator("div.widget-label", has_text=" of ")
    assert "channel 0 of 32: 148x148" in caption.inner_text()
    handle = explorer.locator(".noUi-handle").first  # the channel slider
    handle.focus()
    for _ in range(3):
        handle.press("ArrowRight")
    assert_picture_changes(picture, before, "activation")
    page.wait_for_function("el => el.textContent.includes('channel 3 of 32')",
                           arg=caption.element_handle(), timeout=30_000)
    explorer.locator(".widget-dropdown select").select_option(index=6)  # conv2d_4
    page.wait_for_function("el => el.textContent.includes('channel 3 of 128: 15x15')",
                           arg=caption.element_handle(), timeout=30_000)
    page.screenshot(path=SHOTS / "05_explorer_after.png")
    assert_no_errors(page, "05")
    page.close()
