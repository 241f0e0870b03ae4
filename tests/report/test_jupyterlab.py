"""The report in a reader's JupyterLab: a notebook's stored plotly figures become interactive plots.

The test starts the JupyterLab of ``.venv`` on 127.0.0.1 (a free port, a random token, no browser, the
repository as its root) with its own, empty, Jupyter and JupyterLab directories in ``tmp_path``, so that neither
the user's configuration nor anything else on the machine changes what it shows, and nothing is written into the
repository. Everything that would reach the network is switched off: the news feed (``LabApp.news_url``), the
update check (``LabApp.check_for_updates_class``), the extension manager's PyPI listing
(``LabApp.extension_manager``) and, in the user settings, the front end's news and update notifications. The
autosave is off too (the plot renderer writes a fresh PNG into the output it has drawn, which makes the notebook
"dirty"), and the checkpoint JupyterLab writes when it opens a notebook goes to ``tmp_path``; the test checks
that the notebook is unchanged and that no checkpoint appeared next to it.

It then opens ``notebooks/01-data-tour.ipynb`` (the smallest notebook with plotly figures) in Debian's headless
Chromium, driven as in test_site.py, without running it: the stored outputs must render as they are.

Trust. A notebook opened on a fresh machine is *untrusted* (its signature is not in the reader's, here empty,
signature database), and JupyterLab then only uses renderers that declare themselves safe
(``RenderMimeRegistry.preferredMimeType(data, "ensure")``). The ``jupyterlab-plotly`` mime renderer of
``application/vnd.plotly.v1+json`` is declared ``safe: true`` with rank 2 (better than the PNG renderer's 90),
so the figures render as plotly outputs without trusting the notebook; the test checks that the notebook is
indeed untrusted, and does not trust it.

The renderer first shows the output's stored PNG and draws the interactive plot (loading plotly.js) when the
mouse enters it. So the test, like a reader, scrolls to each figure and moves the mouse onto it, then checks
that the plot is drawn (plotly's ``.main-svg`` in the output, with a size, the figure's traces and its modebar).
Throughout, no request (nor websocket) may leave the machine and no page error may occur (JupyterLab 4.6 logs
none when it opens this notebook, so no message is filtered out).
"""

import asyncio
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import choreographer
import nbformat
import psutil
import pytest

from mnist_knn import paths

# tests/ has no __init__.py: pytest puts tests/report on sys.path, so the browser helpers are shared by name
from test_site import TIMEOUT, _Chromium, _chromium, _close, _is_local, _send

NOTEBOOK = paths.NOTEBOOKS_DIR / "01-data-tour.ipynb"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
SERVER_TIMEOUT = 60  # seconds for JupyterLab to answer, and for it to stop
RENDER_TIMEOUT = 60  # seconds for JupyterLab to show the notebook's outputs, and for each plot to be drawn

pytestmark = pytest.mark.browser

# User settings of the isolated JupyterLab (the files JupyterLab's Settings Editor would write).
LAB_SETTINGS = {
    # the news feed and the update check are fetched by the server from the internet (both are also off there)
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    # never save the notebook into the repository (drawing a plot changes its output's PNG: the notebook is dirty)
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def _get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as reply:  # only ever http://127.0.0.1
        return json.load(reply)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(server, info_file, token, log_file):
    """The base URL of ``server`` once it answers. The port is read from the server's own info file: if another
    process took the free port meanwhile, the server moved on to the next one."""
    deadline = time.monotonic() + SERVER_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n"
                        + log_file.read_text(errors="replace")[-3000:])
        try:
            base = f"http://127.0.0.1:{json.loads(info_file.read_text())['port']}"
            _get(f"{base}/api/status?token={token}", timeout=2)
            return base
        except (OSError, ValueError, KeyError):  # no (complete) info file yet, or no answer yet
            time.sleep(0.2)
    pytest.fail(f"JupyterLab did not answer in {SERVER_TIMEOUT} s:\n" + log_file.read_text(errors="replace")[-3000:])


def _stop(server):
    """Stop the server gracefully (SIGTERM: it shuts its kernels down), else kill it and whatever it started."""
    try:
        children = psutil.Process(server.pid).children(recursive=True)  # its kernels
    except psutil.NoSuchProcess:
        children = []
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(SERVER_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(SERVER_TIMEOUT)
    for process in children:  # kernels run in sessions of their own: kill any that outlived the server
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=SERVER_TIMEOUT)


@pytest.fixture
def chromium():
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium found (install Debian's chromium, or set MNIST_KNN_CHROMIUM)")
    return executable


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on 127.0.0.1, isolated in ``tmp_path``; yields ``(base_url, token)``."""
    home = tmp_path / "jupyter"
    dirs = {name: home / name
            for name in ("config", "data", "runtime", "settings", "workspaces", "checkpoints", "ipython")}
    for path in dirs.values():
        path.mkdir(parents=True)
    for name, values in LAB_SETTINGS.items():
        (dirs["settings"] / name).parent.mkdir(parents=True, exist_ok=True)
        (dirs["settings"] / name).write_text(json.dumps(values))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("JUPYTER", "JUPYTERLAB", "IPYTHON", "JPY_"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]), JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]), IPYTHONDIR=str(dirs["ipython"]),
        PYTHONNOUSERSITE="1",  # no configuration or extensions from ~/.local
    )
    token = secrets.token_hex(24)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={_free_port()}", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={paths.PROJECT_ROOT}",
        "--ServerApp.allow_root=True",  # containers and CI often run as root; the server is ours and local
        # opening a notebook makes JupyterLab checkpoint it, by default into notebooks/.ipynb_checkpoints/;
        # the directory is joined to the notebook's own, so an absolute one takes every checkpoint
        f"--FileCheckpoints.checkpoint_dir={dirs['checkpoints']}",
        # nothing from the internet
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    log_file = tmp_path / "jupyterlab.log"
    with open(log_file, "wb") as log:
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            yield _wait_for(server, dirs["runtime"] / f"jpserver-{server.pid}.json", token, log_file), token
        finally:
            _stop(server)


# --- in the browser ---------------------------------------------------------------------------------

# Each snippet is an expression evaluated in the page; PLOTS are the notebook's plotly outputs, in order.
PLOTS = "Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output.jp-RenderedPlotly'))"
STATUS = f"""(() => ({{
  outputs: document.querySelectorAll('.jp-Notebook .jp-OutputArea-output').length,
  plots: {PLOTS}.length,
  images: document.querySelectorAll('.jp-Notebook .jp-OutputArea-output.jp-RenderedImage').length,
}}))()"""
# Scroll figure i to the middle of the notebook and return the middle of its PNG once the layout stays put, whether
# that point is on the figure, and whether the PNG is shown. It also notes (in a data attribute) when the mouse
# enters the figure, to tell a missed mouse from a plot that is not drawn.
AIM = """(async (i) => {
  const plot = %s[i];
  if (!plot.dataset.testEntered) {
    plot.dataset.testEntered = "no";
    plot.addEventListener("mouseenter", () => { plot.dataset.testEntered = "yes"; });
  }
  const frame = () => new Promise(resolve => requestAnimationFrame(() => resolve()));
  let last = null;
  for (let tries = 0; tries < 50; tries++) {
    plot.scrollIntoView({block: "center"});
    await frame(); await frame();
    const png = plot.querySelector("img.plot-img");
    const r = (png || plot).getBoundingClientRect();
    const at = {x: Math.round(r.x + r.width / 2), y: Math.round(r.y + r.height / 2)};
    if (last && last.x === at.x && last.y === at.y) {
      at.hit = plot.contains(document.elementFromPoint(at.x, at.y));
      at.png = !!(png && png.naturalWidth > 0 && png.style.display !== "none");
      return at;
    }
    last = at;
  }
  return last;
})(%%d)""" % PLOTS
ENTERED = "%s[%%d].dataset.testEntered === 'yes'" % PLOTS
# What plotly drew into figure i: the output's node is plotly's graph div. null until drawn and the PNG hidden.
DRAWN = """((i) => {
  const plot = %s[i];
  const svg = plot.querySelector(".main-svg");
  const png = plot.querySelector("img.plot-img");
  if (!svg || !plot._fullLayout || (png && png.style.display !== "none")) return null;
  const r = svg.getBoundingClientRect();
  return {width: r.width, height: r.height, traces: (plot.data || []).length,
          modebar: !!plot.querySelector(".modebar-container .modebar")};
})(%%d)""" % PLOTS


async def _evaluate(tab, expression):
    reply = await _send(tab, "Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                  "returnByValue": True})
    if "exceptionDetails" in reply:
        raise RuntimeError(f"in the page: {reply['exceptionDetails']}")
    return reply["result"].get("value")


async def _until(tab, expression, done, timeout=RENDER_TIMEOUT):
    """Evaluate ``expression`` until ``done(value)``; return ``(True, value)``, or ``(False, value)`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = await _evaluate(tab, expression)
        if done(value):
            return True, value
        if time.monotonic() > deadline:
            return False, value
        await asyncio.sleep(0.2)


async def _move_mouse(tab, x, y):
    await _send(tab, "Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})


async def _hover(tab, i):
    """Move the mouse onto figure ``i`` as a reader would: away while the figure scrolls into view (a figure that
    scrolls under a resting mouse is entered too), then onto its middle. Retried if the mouse missed."""
    for _ in range(3):
        await _move_mouse(tab, 0, 0)  # JupyterLab's top bar
        aimed, at = await _until(tab, AIM % i, lambda a: a and a.get("hit"))
        assert aimed, f"figure {i + 1} cannot be pointed at: {at}"
        assert at["png"], f"figure {i + 1}: its stored PNG is not shown before the mouse enters it"
        await _move_mouse(tab, at["x"], at["y"])
        entered, _ = await _until(tab, ENTERED % i, bool, timeout=2)
        if entered:
            return
    raise AssertionError(f"figure {i + 1}: the mouse never entered it")


async def _hover_every_plot(executable, user_data_dir, url, n_outputs, n_plots, events):
    """Open ``url``; once the notebook's ``n_outputs`` outputs are shown, hover each of its ``n_plots`` plotly
    outputs and report what was drawn.

    Returns ``(status, drawn)``: the output counts and one report per plot; appends every DevTools event to
    ``events``.
    """
    browser = choreographer.Browser(executable, browser_cls=_Chromium, enable_extensions=False,
                                    tmp_dir=str(user_data_dir))
    try:
        await asyncio.wait_for(browser.open(), TIMEOUT)
        tab = await asyncio.wait_for(browser.create_tab("about:blank"), TIMEOUT)

        async def record(event):
            events.append(event)

        tab.subscribe("*", record)
        for domain in ("Page", "Network", "Runtime", "Log"):
            await _send(tab, f"{domain}.enable")
        await _send(tab, "Page.navigate", {"url": url})
        shown, status = await _until(tab, STATUS, lambda s: s and s["outputs"] >= n_outputs)
        assert shown, f"JupyterLab did not show the notebook's {n_outputs} outputs in {RENDER_TIMEOUT} s: {status}"
        drawn = []
        for i in range(min(n_plots, status["plots"])):
            await _hover(tab, i)
            done, plot = await _until(tab, DRAWN % i, bool)
            assert done, f"figure {i + 1}: plotly drew no plot in {RENDER_TIMEOUT} s after the mouse entered it"
            drawn.append(plot)
        return status, drawn
    finally:
        await _close(browser)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _page_errors(events):
    """Uncaught exceptions, and errors logged by the page or by the browser about it."""
    return [json.dumps(e["params"])[:300] for e in events
            if e["method"] == "Runtime.exceptionThrown"
            or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
            or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")]


def test_notebook_figures_are_interactive_in_jupyterlab(chromium, jupyterlab, tmp_path):
    base, token = jupyterlab
    relative = NOTEBOOK.relative_to(paths.PROJECT_ROOT).as_posix()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    figures = [o["data"][PLOTLY_MIME] for o in outputs if PLOTLY_MIME in o.get("data", {})]
    assert figures, f"{relative} has no plotly figure to check"
    before = _digest(NOTEBOOK)
    checkpoint = NOTEBOOK.parent / ".ipynb_checkpoints" / f"{NOTEBOOK.stem}-checkpoint.ipynb"
    checkpointed = checkpoint.exists()

    # a reader's fresh JupyterLab does not trust the notebook (the plotly renderer is a safe one: no need to)
    served = _get(f"{base}/api/contents/{relative}?content=1&token={token}", timeout=TIMEOUT)
    trusted = {c["metadata"].get("trusted") for c in served["content"]["cells"] if c["cell_type"] == "code"}
    assert trusted == {False}, f"the notebook should be opened untrusted: {trusted}"

    url = f"{base}/lab/tree/{relative}?token={token}"
    (tmp_path / "chromium").mkdir()
    events = []
    try:
        status, drawn = asyncio.run(
            _hover_every_plot(chromium, tmp_path / "chromium", url, len(outputs), len(figures), events))
    except AssertionError as failure:
        raise AssertionError(f"{failure}\npage errors: {_page_errors(events)}") from None

    problems = []
    if status["plots"] != len(figures):
        problems.append(f"{status['plots']} plotly outputs shown, {len(figures)} in the notebook")
    if status["images"]:
        problems.append(f"{status['images']} outputs shown as plain images (the plotly renderer was not used)")
    for n, (figure, plot) in enumerate(zip(figures, drawn), start=1):
        if not (plot["width"] > 0 and plot["height"] > 0):
            problems.append(f"figure {n}: plot of size {plot['width']} x {plot['height']}")
        if plot["traces"] != len(figure["data"]):
            problems.append(f"figure {n}: {plot['traces']} traces drawn, {len(figure['data'])} in the figure")
        if not plot["modebar"]:
            problems.append(f"figure {n}: no modebar (not interactive)")
    requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    requests += [e["params"]["url"] for e in events if e["method"] == "Network.webSocketCreated"]
    remote = [url[:100] for url in requests if not _is_local(url)]
    if remote:
        problems.append(f"requests leaving the machine: {remote}")
    if errors := _page_errors(events):
        problems.append(f"errors in the page: {errors}")
    if _digest(NOTEBOOK) != before:
        problems.append(f"{relative} was modified")
    if checkpoint.exists() and not checkpointed:
        checkpoint.unlink()
        problems.append(f"JupyterLab wrote a checkpoint into the repository: {checkpoint} (deleted)")
    assert not problems, "\n".join(problems)
