"""Drive a throwaway JupyterLab with Playwright (Python) in headless Debian Chromium.

Used by the browser tests (tests/browser) and by benchmarks/ui.py. Everything is local: a
JupyterLab on 127.0.0.1 with a random free port and a token, a temp root dir holding fresh
copies of the test notebooks, temp settings (news pop-up off) and workspaces.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab: ``url(path)`` gives an authenticated address."""

    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen, log: Path) -> None:
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log

    def url(self, path: str = "lab") -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def copy_notebook(self, name: str, src: Path | None = None) -> str:
        shutil.copy(src or NOTEBOOKS / name, self.root / name)
        return name


@contextmanager
def jupyter_lab(notebooks: tuple[str, ...] = (), *, env: dict[str, str] | None = None,
                timeout: float = 90.0) -> Iterator[Lab]:
    """Start JupyterLab in a temp dir holding fresh copies of ``notebooks``; stop it afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="le-lab-"))
    root, settings, user, ws, rt = (tmp / d for d in ("root", "settings", "user-settings", "workspaces", "runtime"))
    for d in (root, settings, user, ws, rt):
        d.mkdir()
    (settings / "overrides.json").write_text(json.dumps(OVERRIDES))
    for nb in notebooks:
        shutil.copy(NOTEBOOKS / nb, root / nb)
    port, token = _free_port(), secrets.token_hex(16)
    e = dict(os.environ)
    e.update({"PYTHONPATH": os.pathsep.join([str(REPO), e.get("PYTHONPATH", "")]).rstrip(os.pathsep),
              "JUPYTER_RUNTIME_DIR": str(rt), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
              "PYDEVD_DISABLE_FILE_VALIDATION": "1", "LE_REPO": str(REPO)})
    e.update(env or {})
    log = tmp / "lab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", f"--LabApp.app_settings_dir={settings}",
           f"--LabApp.user_settings_dir={user}", f"--LabApp.workspaces_dir={ws}",
           "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=False"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=root, env=e, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(root, port, token, proc, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start in {timeout:.0f}s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield lab
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium (playwright's own browser download is not used)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def new_page(b: Any, viewport: tuple[int, int] = (1400, 1000)) -> Any:
    ctx = b.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    return page


@contextmanager
def browser(viewport: tuple[int, int] = (1400, 1000)) -> Iterator[Any]:
    """A page in a fresh headless Chromium (for scripts; tests share one browser)."""
    with chromium() as b:
        yield new_page(b, viewport)


def open_and_run(page: Any, lab: Lab, notebook: str, *, timeout_s: float = 180.0) -> None:
    """Open ``notebook``, wait for an idle kernel, Run All, wait for every cell; fail on a traceback."""
    page.goto(lab.url(f"lab/tree/{notebook}"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('notebook:run-all-cells')")
    # the kernel must be connected and idle (the indicator alone reads "idle" before a kernel exists)
    page.wait_for_function("""() => { const w = window.jupyterapp.shell.currentWidget;
        const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
        return !!k && w.sessionContext.isReady && k.connectionStatus === 'connected' && k.status === 'idle'; }""",
                           timeout=90_000, polling=200)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=30_000)
    page.click(".jp-Notebook .jp-Cell >> nth=0")  # the notebook is the current widget, in command mode
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; }")
    # every code cell gets an execution count, none is pending, the kernel is idle again
    page.wait_for_function("""() => {
        const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
        const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
        return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent)) &&
               ind && ind.dataset.status === 'idle';
    }""", timeout=timeout_s * 1000, polling=250)
    errors = page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output')]
        .map(e => e.innerText).filter(t => /Traceback|Error:/.test(t) && !/Warning/.test(t.split('\\n')[0]))""")
    if errors:
        raise AssertionError(f"{notebook} raised in the kernel:\n" + "\n---\n".join(e[-2000:] for e in errors))


def screenshot(page_or_el: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page_or_el.screenshot(path=str(path))
    return path


def kernel_eval(page: Any, code: str, timeout_ms: int = 30_000) -> str:
    """Run ``code`` in the open notebook's kernel (not in a cell) and return its stdout."""
    return page.evaluate("""async ([code, timeout]) => {
        const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        const f = k.requestExecute({ code, silent: false, store_history: false });
        let out = "";
        f.onIOPub = (m) => {
            if (m.header.msg_type === "stream") out += m.content.text;
            if (m.header.msg_type === "error") out += "ERROR " + m.content.ename + ": " + m.content.evalue;
        };
        await Promise.race([f.done, new Promise((_, rej) => setTimeout(() => rej(new Error("kernel timeout")), timeout))]);
        return out;
    }""", [code, timeout_ms])
