"""Drive headless Chromium over the DevTools protocol (stdlib + ``websockets``, no browser packages),
and run ``dagster-webserver`` for a test; both are ended, by process group, when their ``with`` ends.

The Dagster UI is a React app that loads its data by GraphQL after the page has loaded, so nothing
here waits a fixed time: every wait polls a condition on the page — the new document loaded
(:meth:`Browser.goto`: the load event of the navigation it started), text or labels in the DOM
(:meth:`Browser.wait_for_text`, :meth:`Browser.wait_for_labels`), a graph zoomed to fit and seen so
twice, a frame apart (:meth:`Browser.show_whole_graph`), every GraphQL request answered and no
transition running (:meth:`Browser.settle`, before each screenshot) — and only fails the test after
a generous timeout. While a page navigates or re-renders, a probe may hit a DevTools error (its
execution context gone) or a page script may throw (an element it found is replaced): :func:`poll`
takes both as "not yet" and tries again, and fails with the last of them at its timeout.
"""

from __future__ import annotations

import base64
import collections
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.ports import free_port

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



# DevTools errors that a command can meet while the page navigates or its frame is replaced: the
# execution context it ran in is gone, and the next try runs in the new one.
TRANSIENT_DEVTOOLS = ("Cannot find context with specified id", "Execution context was destroyed",
                      "Inspected target navigated or closed", "Cannot find default execution context",
                      "Promise was collected", "Execution context is not available")
# JavaScript errors that are a script's own mistake, not the page changing under it: never retried.
SCRIPT_BUGS = ("SyntaxError", "ReferenceError")


class PageError(RuntimeError):
    """A DevTools command that failed, or a page script that threw. ``transient``: the page was
    changing under it (navigating, re-rendering), so the same probe may succeed when tried again."""

    def __init__(self, message: str, transient: bool):
        super().__init__(message)
        self.transient = transient


def poll(what: str, probe, timeout: float = WAIT_S, every: float = 0.5):
    """``probe()`` until it returns something truthy; the test fails after ``timeout`` seconds.
    Network errors and transient page errors (:class:`PageError`: the page navigating or re-rendering)
    count as "not yet"; the failure names the last of them."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        try:
            if got := probe():
                return got
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            last = e
        except PageError as e:
            if not e.transient:
                raise
            last = e
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen within {timeout:.0f} s" + (f" (last error: {last})" if last else ""))
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


# The laid-out asset graph's SVG: the one whose parent the UI pans and zooms (a CSS matrix); its
# grandparent is the graph's viewport. Null (not yet) while the graph is absent or being replaced.
_GRAPH_SVG = """const svg = Array.from(document.querySelectorAll('svg[width][height]'))
    .find(s => s.isConnected && s.parentElement && s.parentElement.style.transform.startsWith('matrix(')
      && s.parentElement.parentElement);"""
# The laid-out asset graph: the SVG's size, its viewport's, the zoom shown, and whether the SVG lies
# wholly inside the viewport (null until the graph is there).
GRAPH = """(() => {
  SVG
  if (!svg) return null;
  const view = svg.parentElement.parentElement.getBoundingClientRect(), box = svg.getBoundingClientRect();
  const scale = new DOMMatrix(svg.parentElement.style.transform).a;
  const inside = box.left >= view.left - 1 && box.right <= view.right + 1 && box.top >= view.top - 1
    && box.bottom <= view.bottom + 1;
  return {w: +svg.getAttribute('width'), h: +svg.getAttribute('height'), cw: view.width, ch: view.height,
          scale, inside};
})()""".replace("SVG", _GRAPH_SVG)
# GRAPH twice, two frames apart: a graph still zooming or being laid out again reads differently.
GRAPH_TWICE = f"""(async () => {{
  const graph = () => {GRAPH};
  const first = graph();
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [first, graph()];
}})()"""

# A double-click on the graph's background (its viewport element): the UI zooms the graph to fit.
# False (try again) while there is no graph to click.
FIT = """(() => {
  SVG
  if (!svg) return false;
  const view = svg.parentElement.parentElement, r = view.getBoundingClientRect();
  if (!r.width || !r.height) return false;
  const at = {bubbles: true, cancelable: true, view: window, clientX: r.left + 5, clientY: r.top + 5, detail: 2};
  view.dispatchEvent(new MouseEvent('dblclick', at));
  return true;
})()""".replace("SVG", _GRAPH_SVG)

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
# Whether either of those panels is still shown.
PANELS_SHOWN = """!!document.querySelector('input[placeholder^="Jump to"]')
  || Array.from(document.querySelectorAll('button')).some(e => e.innerText.trim() === 'Hide navigation')"""
# The graph's zoom-out button; false (try again) while it is not there.
ZOOM_OUT = """(() => { const b = document.querySelector('button:has([aria-label=zoom_out])');
  if (!b) return false; b.click(); return true; })()"""
# Each asset node drawn in the graph: [its label (the last component of its key), the titles of the
# group boxes it lies inside (SVG coordinates), whether each such title is drawn inside the graph's
# viewport]. A group box is a foreignObject of class "group" (expanded: the box around its nodes;
# collapsed: a box in place of them) whose header holds the group's name as a [data-tooltip]
# element; an asset node is a foreignObject holding an AssetNode_assetName element. Null while there
# is no graph.
NODE_GROUPS = """(() => {
  SVG
  if (!svg) return null;
  const view = svg.parentElement.parentElement.getBoundingClientRect();
  const box = e => ({x: +e.getAttribute('x'), y: +e.getAttribute('y'), w: +e.getAttribute('width'),
                     h: +e.getAttribute('height')});
  const within = (a, b) => a.x >= b.x - 1 && a.y >= b.y - 1 && a.x + a.w <= b.x + b.w + 1 && a.y + a.h <= b.y + b.h + 1;
  const groups = Array.from(svg.querySelectorAll('foreignObject.group')).map(g => {
    const t = g.querySelector('[data-tooltip]'), r = t && t.getBoundingClientRect();
    return {title: t ? t.innerText.trim() : null, ...box(g),
            drawn: !!r && r.width > 0 && r.left >= view.left - 1 && r.right <= view.right + 1
              && r.top >= view.top - 1 && r.bottom <= view.bottom + 1};
  });
  return Array.from(svg.querySelectorAll('foreignObject:not(.group)')).flatMap(n => {
    const name = n.querySelector('[class*="AssetNode_assetName"]');
    if (!name) return [];
    const inside = groups.filter(g => within(box(n), g));
    return [[name.innerText.trim(), inside.map(g => g.title), inside.map(g => g.drawn)]];
  });
})()""".replace("SVG", _GRAPH_SVG)

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
# Placeholders the UI shows until a batched, throttled request has been made and answered (a
# collapsed group's "3 assets (fetching statuses)"): not yet settled while one is on the page.
LOADING = ("fetching statuses",)
# True once every fetch so far has its answer, each operation named in OPS has been answered at least
# once, no CSS transition or finite animation (a dialog fading in) is running, no LOADING text is
# shown, and two frames have been drawn since with nothing new asked.
SETTLED = """(async () => {
  const all = window.__featrixFetches;
  if (!all || !document.body) return false;
  const moving = () => document.getAnimations().some(a => a.playState === 'running'
    && a.effect && a.effect.getComputedTiming().iterations !== Infinity);
  const loading = () => LOADING.some(t => document.body.innerText.includes(t));
  const ok = () => all.every(r => r.done) && OPS.every(op => all.some(r => r.op === op && r.done)) && !moving()
    && !loading();
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
        self._events = collections.deque(maxlen=5000)  # Page.* events, kept for goto()

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
            self.send("Page.setLifecycleEventsEnabled", enabled=True)  # "load" per navigation (its loaderId)
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

    def _keep(self, msg: dict) -> None:
        if msg.get("method", "").startswith("Page."):
            self._events.append(msg)

    def _pump(self, wait: float) -> None:
        """Read the events that arrive within ``wait`` seconds (and any already queued) into the log."""
        try:
            while True:
                msg = json.loads(self.ws.recv(timeout=wait))
                if "id" not in msg:  # a late answer to a command given up on is dropped
                    self._keep(msg)
                wait = 0
        except TimeoutError:
            pass

    def send(self, method: str, **params) -> dict:
        """One DevTools command; its result (Page events that arrive meanwhile are kept for :meth:`goto`).
        Raises :class:`PageError`, transient where the page was navigating under it."""
        id_ = next(self._ids)
        self.ws.send(json.dumps({"id": id_, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=WAIT_S))
            if msg.get("id") == id_:
                if "error" in msg:
                    text = str(msg["error"].get("message", msg["error"]))
                    raise PageError(f"{method}: {msg['error']}", any(t in text for t in TRANSIENT_DEVTOOLS))
                return msg["result"]
            if "id" not in msg:
                self._keep(msg)

    def eval(self, expression: str):
        """The value of a JavaScript expression in the page (awaited if it is a promise). A script that
        throws raises a :class:`PageError`, transient unless the script itself is wrong (SyntaxError,
        ReferenceError): an element it found may have been replaced while the page re-renders."""
        out = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            details = out["exceptionDetails"]
            exception = details.get("exception", {})
            text = f"{details.get('text')} {exception.get('description', '')}"
            bug = exception.get("className") in SCRIPT_BUGS and not any(t in text for t in TRANSIENT_DEVTOOLS)
            raise PageError(f"{expression[:80]!r}: {text}", transient=not bug)
        return out["result"].get("value")

    def where(self) -> str:
        """The page's address, for messages ("?" while it cannot be read)."""
        try:
            return self.eval("location.href")
        except (PageError, TimeoutError) as e:
            return f"? ({e})"

    def goto(self, url: str) -> None:
        """Open ``url`` and wait for that navigation's own load event (matched by the loader id that
        Page.navigate returns, so the page before never counts as loaded), then for the document there
        to be complete at a real address."""
        self._events.clear()
        nav = self.send("Page.navigate", url=url)
        if nav.get("errorText"):
            pytest.fail(f"navigating to {url}: {nav['errorText']}")
        frame, loader = nav.get("frameId"), nav.get("loaderId")  # no loaderId: a same-document navigation

        def loaded():
            if loader:
                self._pump(0.2)
                if not any(e["method"] == "Page.lifecycleEvent" and e["params"].get("name") == "load"
                           and e["params"].get("loaderId") == loader and e["params"].get("frameId") == frame
                           for e in self._events):
                    return False
            return self.eval("document.readyState === 'complete' && location.href") not in (None, False, "about:blank")
        poll(f"{url} loaded", loaded, every=0.2)

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
        except pytest.fail.Exception as e:
            pytest.fail(f"{what}: too few of {short.get('now')} (wanted {wanted}) on {self.where()} ({e.msg})")

    def wait_for_text(self, what: str, needles, timeout: float = WAIT_S) -> str:
        """Poll the page text until every string in ``needles`` is in it; returns that text."""
        needles, missing = list(needles), {}

        def probe():
            text = self.text()
            missing["now"] = [n for n in needles if n not in text]
            return text if not missing["now"] else None
        try:
            return poll(what, probe, timeout=timeout)
        except pytest.fail.Exception as e:
            pytest.fail(f"{what}: {missing.get('now')} not on {self.where()} ({e.msg})")

    def type_into(self, selector: str, text: str) -> None:
        """Focus the element ``selector`` (an input) and type ``text`` into it as keyboard input, so that
        the page's own input handlers (React's onChange) see it."""
        poll(f"{selector} on {self.where()}", lambda: self.eval(
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
        scale — seen so twice in a row, two frames apart, so never mid-zoom — and every string in
        ``needles`` is on the page; returns the page text.

        ``wide``: first hide the navigation and the asset sidebar, as their buttons do.
        The UI first centres a graph at the zoom level it saved last, which can leave most of a big
        graph outside the viewport — and it renders only the nodes inside the viewport."""
        self.goto(url)
        graph = poll(f"the asset graph of {url}", lambda: self.eval(GRAPH))
        clicked = wide and poll(f"the side panels of {url} hidden", lambda: [self.eval(HIDE_PANELS)])[0]
        if clicked:  # the graph gets the window's width: wait for its viewport to grow
            poll(f"the graph of {url} without side panels",
                 lambda: not self.eval(PANELS_SHOWN) and (g := self.eval(GRAPH)) and g["cw"] > graph["cw"])

        state = {"fit": 0, "out": 0, "before": None, "unchanged": 0}

        def fits(g) -> bool:
            return g["inside"] and (state["out"] or g["scale"] >= 0.9 * min(g["cw"] / g["w"], g["ch"] / g["h"], 1))

        def fitted():  # until it fits: zoom to fit, and where that leaves the graph too big, zoom out
            first, second = self.eval(GRAPH_TWICE)
            if not first or first != second:  # no graph yet, or it is zooming or being laid out: look again
                return False
            if fits(first):
                return True
            if first == state["before"] and state["unchanged"] < 3:  # the last step not taken effect yet
                state["unchanged"] += 1
                return False
            step = "fit" if not state["fit"] else "out"
            if self.eval(FIT if step == "fit" else ZOOM_OUT):  # false: nothing to click yet
                state[step] += 1
                state["before"], state["unchanged"] = first, 0
            return False
        poll(f"the whole graph of {url} inside its viewport", fitted, every=1)
        return self.wait_for_text(f"every node of {url}", needles)

    def node_groups(self) -> list[tuple[str, list[str], list[bool]]] | None:
        """Each asset node drawn in the graph: (its label, the titles of the group boxes it lies in,
        whether each title is drawn inside the viewport); None while there is no graph."""
        got = self.eval(NODE_GROUPS)
        return None if got is None else [tuple(n) for n in got]

    def settle(self, ops=()) -> None:
        """Wait until the page's data requests have all been answered (``ops``: and these GraphQL
        operations at least once) and the page drawn since."""
        js = SETTLED.replace("OPS", json.dumps(list(ops))).replace("LOADING", json.dumps(list(LOADING)))
        poll(f"{self.where()}: its data requests answered {list(ops)}", lambda: self.eval(js))

    def screenshot(self, path: Path, ops=()) -> Path:
        """A PNG of the viewport (width × height), once the page's data has arrived (:meth:`settle`)."""
        self.settle(ops)
        data = self.send("Page.captureScreenshot", format="png", fromSurface=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
