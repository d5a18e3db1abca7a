"""Drive headless Chromium over the DevTools protocol (stdlib + ``websockets``, no browser packages),
and run ``dagster-webserver`` for a test; both are ended, by process group, when their ``with`` ends.

The Dagster UI is a React app that loads its data by GraphQL after the page has loaded, so nothing
here waits a fixed time: every wait polls a condition on the page — text or labels in the DOM
(:meth:`Browser.wait_for_text`, :meth:`Browser.wait_for_labels`), a graph zoomed to fit
(:meth:`Browser.show_whole_graph`), every GraphQL request answered and no transition running
(:meth:`Browser.settle`, before each screenshot) — and only fails the test after a generous timeout.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1600, 1000
WAIT_S = 120  # how long a page may take to show what is looked for before the test fails
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}"]


def require_chromium() -> Path:
    """The Chromium binary; skips the test where it is absent unless FEATRIX_REQUIRE_BROWSER=1 (CI)."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} not installed (Debian package 'chromium'); the browser test needs headless Chromium"
    if os.environ.get("FEATRIX_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and FEATRIX_REQUIRE_BROWSER=1 says it must run")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(what: str, probe, timeout: float = WAIT_S, every: float = 0.5):
    """``probe()`` until it returns something truthy; the test fails after ``timeout`` seconds."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        try:
            if got := probe():
                return got
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            last = e
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen within {timeout:.0f} s" + (f" ({last})" if last else ""))
        time.sleep(every)


def _stop(proc: subprocess.Popen, sig=signal.SIGINT, grace: float = 30) -> None:
    """End a process started with ``start_new_session=True`` and everything it started, by its group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=grace)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    try:  # the group's other members (chromium's renderers, dagster's code server) once the leader exited
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Webserver:
    """``dagster-webserver -w workspace.yaml`` (no daemon) on a free port; ``with`` waits until its
    GraphQL answers with the loaded code location. ``env`` is added to this process's environment
    (DAGSTER_HOME, FEATRIX_SPEC, FEATRIX_HOME). Started via ``env --default-signal=INT``: a
    backgrounded dagster process otherwise ignores SIGINT."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log_path, self.port = env, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def graphql(self, text: str, **variables) -> dict:
        body = json.dumps({"query": text, "variables": variables}).encode()
        req = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            out = json.loads(r.read())
        assert "errors" not in out, out["errors"]
        return out["data"]

    def _loaded(self):
        if self.proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited ({self.proc.returncode}): {self.log_path.read_text()[-3000:]}")
        data = self.graphql("{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name } } "
                            "... on PythonError { message } } }")["repositoriesOrError"]
        assert data["__typename"] == "RepositoryConnection", data
        return data["nodes"]

    def __enter__(self) -> "Webserver":
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["env", "--default-signal=INT", str(REPO / ".venv/bin/dagster-webserver"), "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=REPO, env={**os.environ, **self.env}, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            poll("dagster-webserver serving the code location", self._loaded, every=1)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        _stop(self.proc, signal.SIGINT, grace=60)
        self._log.close()


# The laid-out asset graph: the SVG's size, its viewport's, the zoom shown, and whether the SVG lies
# wholly inside the viewport (null until the graph is there).
GRAPH = """(() => {
  const svg = Array.from(document.querySelectorAll('svg[width][height]'))
    .find(s => s.parentElement && s.parentElement.style.transform.startsWith('matrix('));
  if (!svg) return null;
  const view = svg.parentElement.parentElement.getBoundingClientRect(), box = svg.getBoundingClientRect();
  const scale = new DOMMatrix(svg.parentElement.style.transform).a;
  const inside = box.left >= view.left - 1 && box.right <= view.right + 1 && box.top >= view.top - 1
    && box.bottom <= view.bottom + 1;
  return {w: +svg.getAttribute('width'), h: +svg.getAttribute('height'), cw: view.width, ch: view.height,
          scale, inside};
})()"""


# A double-click on the graph's background (its viewport element): the UI zooms the graph to fit.
FIT = """(() => {
  const svg = Array.from(document.querySelectorAll('svg[width][height]'))
    .find(s => s.parentElement && s.parentElement.style.transform.startsWith('matrix('));
  const view = svg.parentElement.parentElement, r = view.getBoundingClientRect();
  const at = {bubbles: true, cancelable: true, view: window, clientX: r.left + 5, clientY: r.top + 5, detail: 2};
  view.dispatchEvent(new MouseEvent('dblclick', at));
  return true;
})()"""

# The buttons that hide the left navigation and the global graph's asset sidebar (the one beside
# "Jump to…"); true if any was there to click.
HIDE_PANELS = """(() => {
  let clicked = false;
  const jump = document.querySelector('input[placeholder^="Jump to"]');
  for (let el = jump; el; el = el.parentElement) {
    const b = el.querySelector('button');
    if (b) { b.click(); clicked = true; break; }
  }
  const nav = Array.from(document.querySelectorAll('button')).find(e => e.innerText.trim() === 'Hide navigation');
  if (nav) { nav.click(); clicked = true; }
  return clicked;
})()"""
ZOOM_OUT = "document.querySelector('button:has([aria-label=zoom_out])').click(), true"

# Installed in every page before its own scripts: records each fetch (the UI's GraphQL requests, by
# operation name) and when its response body has arrived, so that a screenshot can wait for the data.
TRACK_FETCH = """(() => {
  window.__featrixFetches = [];
  const fetch = window.fetch;
  window.fetch = function (input, init) {
    let op = null;
    try { op = JSON.parse(init && init.body).operationName || null; } catch (e) {}
    const rec = {op, done: false};
    window.__featrixFetches.push(rec);
    const out = fetch.apply(this, arguments);
    out.then(r => r.clone().text()).then(() => { rec.done = true; }, () => { rec.done = true; });
    return out;
  };
})()"""
# True once every fetch so far has its answer, each operation named in OPS has been answered at least
# once, no CSS transition or finite animation (a dialog fading in) is running, and two frames have
# been drawn since with nothing new asked.
SETTLED = """(async () => {
  const all = window.__featrixFetches;
  if (!all) return false;
  const moving = () => document.getAnimations().some(a => a.playState === 'running'
    && a.effect && a.effect.getComputedTiming().iterations !== Infinity);
  const ok = () => all.every(r => r.done) && OPS.every(op => all.some(r => r.op === op && r.done)) && !moving();
  if (!ok()) return false;
  const n = all.length;
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return ok() && all.length === n;
})()"""


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT):
        self.width, self.height = width, height
        self._ids = itertools.count(1)

    def __enter__(self) -> "Browser":
        binary = require_chromium()
        self._profile = tempfile.mkdtemp(prefix="featrix-chromium-")
        self._log = Path(self._profile) / "chromium.log"  # removed with the profile
        self._err = open(self._log, "w")
        self.proc = subprocess.Popen(
            [str(binary), *FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self._err, start_new_session=True)
        try:
            active = Path(self._profile) / "DevToolsActivePort"  # chromium writes its port here once listening
            port = int(poll("chromium's DevToolsActivePort", lambda: self._alive() and active.exists()
                            and active.read_text().split("\n")[0].strip(), timeout=60, every=0.2))
            pages = poll("chromium's page target", lambda: [t for t in json.loads(urllib.request.urlopen(
                f"http://127.0.0.1:{port}/json/list", timeout=10).read()) if t["type"] == "page"], timeout=60)
            self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
            self.send("Page.enable")
            self.send("Page.addScriptToEvaluateOnNewDocument", source=TRACK_FETCH)
            self.send("Runtime.enable")
            self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            self._err.flush()
            pytest.fail(f"chromium exited ({self.proc.returncode}): {self._log.read_text()[-3000:]}")
        return True

    def __exit__(self, *exc) -> None:
        if getattr(self, "ws", None) is not None:
            try:
                self.ws.close()
            except Exception:  # noqa: BLE001 - the browser may already be gone
                pass
        _stop(self.proc, signal.SIGTERM, grace=15)
        self._err.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def send(self, method: str, **params) -> dict:
        """One DevTools command; its result (events that arrive meanwhile are dropped)."""
        id_ = next(self._ids)
        self.ws.send(json.dumps({"id": id_, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=WAIT_S))
            if msg.get("id") == id_:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, expression: str):
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        out = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"{expression[:80]}: {out['exceptionDetails'].get('text')} "
                               f"{out['exceptionDetails'].get('exception', {}).get('description', '')}")
        return out["result"].get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        poll(f"{url} loaded", lambda: self.eval("document.readyState === 'complete' && location.href")
             not in (None, False, "about:blank"), timeout=60, every=0.2)

    def text(self) -> str:
        """What a person can read on the page (rendered text, SVG labels included)."""
        return self.eval("document.body ? document.body.innerText + '\\n' + "
                         "Array.from(document.querySelectorAll('svg text')).map(t => t.textContent).join('\\n') : ''")

    def html(self) -> str:
        return self.eval("document.documentElement.outerHTML")

    def labels(self) -> dict[str, int]:
        """How many elements hold each text of their own (no child elements): node labels, for one."""
        return self.eval("""(() => { const n = {};
          for (const e of document.querySelectorAll('body *')) {
            if (e.children.length || !e.textContent.trim()) continue;
            const t = e.textContent.trim(); n[t] = (n[t] || 0) + 1; }
          return n; })()""")

    def wait_for_labels(self, what: str, wanted: dict[str, int], timeout: float = WAIT_S) -> dict[str, int]:
        """Poll until each text in ``wanted`` is the whole text of at least that many elements."""
        short = {}

        def probe():
            have = self.labels()
            short["now"] = {k: have.get(k, 0) for k, v in wanted.items() if have.get(k, 0) < v}
            return have if not short["now"] else None
        try:
            return poll(what, probe, timeout=timeout)
        except pytest.fail.Exception:
            pytest.fail(f"{what}: too few of {short.get('now')} (wanted {wanted}) on {self.eval('location.href')}")

    def wait_for_text(self, what: str, needles, timeout: float = WAIT_S) -> str:
        """Poll the page text until every string in ``needles`` is in it; returns that text."""
        needles, missing = list(needles), {}

        def probe():
            text = self.text()
            missing["now"] = [n for n in needles if n not in text]
            return text if not missing["now"] else None
        try:
            return poll(what, probe, timeout=timeout)
        except pytest.fail.Exception:
            pytest.fail(f"{what}: {missing.get('now')} not on {self.eval('location.href')} within {timeout:.0f} s")

    def type_into(self, selector: str, text: str) -> None:
        """Focus the element ``selector`` (an input) and type ``text`` into it as keyboard input, so that
        the page's own input handlers (React's onChange) see it."""
        poll(f"{selector} on {self.eval('location.href')}", lambda: self.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (e) e.focus(); "
            f"return !!e && document.activeElement === e; }})()"))
        self.send("Input.insertText", text=text)

    def set_storage(self, **items) -> None:
        """Set the page origin's localStorage (JSON values, as the Dagster UI stores its view settings);
        the next page load reads them."""
        for key, value in items.items():
            self.eval(f"localStorage.setItem({json.dumps(key)}, {json.dumps(json.dumps(value))})")

    def show_whole_graph(self, url: str, needles=(), wide: bool = False) -> str:
        """Open a Dagster asset graph, zoom it to fit as a person would (double-click on its background:
        the UI's "autocenter"), and wait until all of it lies inside the viewport at about the fitting
        scale and every string in ``needles`` is on the page; returns the page text.

        ``wide``: first hide the navigation and the asset sidebar, as their buttons do.
        The UI first centres a graph at the zoom level it saved last, which can leave most of a big
        graph outside the viewport — and it renders only the nodes inside the viewport."""
        self.goto(url)
        graph = poll(f"the asset graph of {url}", lambda: self.eval(GRAPH))
        if wide and self.eval(HIDE_PANELS):  # the graph gets the window's width: wait for its viewport to grow
            poll(f"the graph of {url} without side panels", lambda: self.eval(GRAPH)["cw"] > graph["cw"])

        tries = {"fit": 0, "out": 0}

        def fitted():  # until it fits: zoom to fit, and where that leaves the graph too big, zoom out
            g = self.eval(GRAPH)
            if g and g["inside"] and (tries["out"] or g["scale"] >= 0.9 * min(g["cw"] / g["w"], g["ch"] / g["h"], 1)):
                return True
            step = "fit" if not tries["fit"] else "out"
            tries[step] += 1
            self.eval(FIT if step == "fit" else ZOOM_OUT)
            return False
        poll(f"the whole graph of {url} inside its viewport", fitted, every=1)
        return self.wait_for_text(f"every node of {url}", needles)

    def settle(self, ops=()) -> None:
        """Wait until the page's data requests have all been answered (``ops``: and these GraphQL
        operations at least once) and the page drawn since."""
        js = SETTLED.replace("OPS", json.dumps(list(ops)))
        poll(f"{self.eval('location.href')}: its data requests answered {list(ops)}", lambda: self.eval(js))

    def screenshot(self, path: Path, ops=()) -> Path:
        """A PNG of the viewport (width × height), once the page's data has arrived (:meth:`settle`)."""
        self.settle(ops)
        data = self.send("Page.captureScreenshot", format="png", fromSurface=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
