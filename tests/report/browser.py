"""Debian's headless Chromium, driven over the DevTools protocol on a pipe: no package, no port.

`--remote-debugging-pipe` makes Chromium read protocol commands from file descriptor 3 and
write answers and events to descriptor 4, each message JSON ended by a NUL byte
(https://github.com/GoogleChromeLabs/carlo/issues/11; Chromium's
components/devtools/devtools_pipe). Puppeteer and Playwright launch Chromium this way too.
So the test needs neither Selenium nor chromedriver nor a WebSocket library, and opens no
debugging port other processes could reach. Commands and events are the DevTools protocol's
(https://chromedevtools.github.io/devtools-protocol/).

The flags keep a headless Chromium from calling home: without the background-networking ones
it tries Google's services at start, and this machine's closed network refuses them.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)


#: Console calls and log levels that count as a problem with the page.
_COMPLAINTS = frozenset({"error", "warning", "assert"})


class BrowserError(RuntimeError):
    pass


def _above_nine(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class Chromium:
    """One headless Chromium with a fresh profile; `page()` opens a tab to drive."""

    def __init__(self, executable: str = CHROMIUM, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="seatwarden-chromium-")
        # Chromium's own complaints, for the error message when it dies.
        self._log = open(os.path.join(self._profile, "stderr.log"), "wb")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Chromium's ends are moved above 9 first, so that putting them on 3 and 4 below can
        # never overwrite one with the other.
        to_browser_r, from_browser_w = _above_nine(to_browser_r), _above_nine(from_browser_w)
        # bash puts our pipe ends on descriptors 3 and 4, where Chromium looks for them (dash,
        # Debian's /bin/sh, takes single-digit descriptors only, and a test run has many open).
        self._proc = subprocess.Popen(
            [
                "/bin/bash",
                "-c",
                f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-',
                executable,
                *FLAGS,
                f"--user-data-dir={self._profile}",
                "about:blank",
            ],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._out = os.fdopen(to_browser_w, "wb")
        self._in = from_browser_r
        self._next_id = 0
        self._lock = threading.Lock()
        self._answers: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.version = self.send("Browser.getVersion")["product"]

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._in, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self.events.put({"method": "_closed"})
                for waiting in list(self._answers.values()):
                    waiting.put({"error": {"message": "Chromium closed the pipe"}})
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, _, buffer = buffer.partition(b"\0")
                message = json.loads(raw)
                if "id" in message and message["id"] in self._answers:
                    self._answers[message["id"]].put(message)
                else:
                    self.events.put(message)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """Send one command and wait for its answer; a protocol error raises `BrowserError`."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            answer: queue.Queue[dict[str, Any]] = queue.Queue()
            self._answers[ident] = answer
            message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
            if session:
                message["sessionId"] = session
            try:
                self._out.write(json.dumps(message).encode() + b"\0")
                self._out.flush()
            except BrokenPipeError as exc:
                raise BrowserError(f"Chromium is gone (exit {self._proc.poll()}): {self.stderr()}") from exc
        try:
            reply = answer.get(timeout=self.timeout)
        except queue.Empty as exc:
            raise BrowserError(f"no answer to {method} within {self.timeout} s") from exc
        finally:
            self._answers.pop(ident, None)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def stderr(self) -> str:
        """The last lines Chromium wrote to stderr."""
        self._log.flush()
        with open(self._log.name, "rb") as log:
            return b" | ".join(log.read().splitlines()[-8:]).decode(errors="replace")

    def page(self, width: int = 1280, height: int = 900) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, session, width, height)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except BrowserError:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        try:
            self._out.close()
        except BrokenPipeError:
            pass
        os.close(self._in)
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab: load a URL with scripts off, then inspect what it rendered."""

    def __init__(self, browser: Chromium, session: str, width: int, height: int) -> None:
        self.browser = browser
        self.session = session
        self.requests: list[str] = []
        self.problems: list[str] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.resize(width, height)

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.browser.send(method, params, self.session)

    def resize(self, width: int, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def load(self, url: str, scripts: bool = False) -> None:
        """Navigate and wait for the load event, recording every request and every complaint."""
        self.send("Emulation.setScriptExecutionDisabled", {"value": not scripts})
        self.send("Page.navigate", {"url": url})
        self._pump(until="Page.loadEventFired")

    def _pump(self, until: str | None = None) -> None:
        while True:
            try:
                event = self.browser.events.get(timeout=self.browser.timeout if until else 0.2)
            except queue.Empty as exc:
                if until:
                    raise BrowserError(f"no {until} within {self.browser.timeout} s") from exc
                return
            method, params = event.get("method"), event.get("params", {})
            if method == "_closed":
                raise BrowserError("Chromium closed the pipe")
            if event.get("sessionId") != self.session:
                continue
            if method == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])
            elif method == "Runtime.exceptionThrown":
                self.problems.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in _COMPLAINTS:
                self.problems.append(f"console {params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") in _COMPLAINTS:
                self.problems.append(f"log {params['entry']['level']}: {params['entry'].get('text')}")
            if method == until:
                return

    def settle(self) -> None:
        """Collect the events already sent (console messages after load, late requests)."""
        self._pump()

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (DevTools runs it with page scripts off)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluate failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def pdf(self, path: Path) -> Path:
        """The page printed on A4, as a browser's "Save as PDF" would."""
        data = self.send(
            "Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69, "preferCSSPageSize": True}
        )["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
