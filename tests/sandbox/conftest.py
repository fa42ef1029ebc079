"""Fixtures for the sandbox's own tests: running sandboxes, HTTP clients, a receiver."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sandbox import Sandbox
from tests.conftest import SANDBOX_START

START = SANDBOX_START  # the sandbox fixtures' clock start (start_sandbox is in tests/conftest.py)


@pytest.fixture
def sb(start_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return start_sandbox()


def atlassian_client(sandbox: Sandbox, **options: Any) -> httpx.Client:
    """An httpx client on the org's v2 directory paths, authenticated with the API key."""
    return httpx.Client(
        base_url=sandbox.atlassian_base,
        trust_env=False,
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
        **options,
    )


def directory_path(sandbox: Sandbox, rest: str) -> str:
    return f"/v2/orgs/{sandbox.org_id}/directories/-{rest}"


def trust(sandbox: Sandbox) -> ssl.SSLContext:
    """An SSL context that trusts the sandbox's CA (``ca_cert_path``) and nothing else."""
    return ssl.create_default_context(cafile=sandbox.ca_cert_path)


def graph_token(sandbox: Sandbox) -> str:
    """A Graph token from the sandbox's token endpoint, with the client secret."""
    response = httpx.post(
        f"{sandbox.authority_host}/{sandbox.tenant_id}/oauth2/v2.0/token",
        data={
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=trust(sandbox),
        trust_env=False,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def graph_client(sandbox: Sandbox, **options: Any) -> httpx.Client:
    return httpx.Client(
        base_url=sandbox.graph_base,
        verify=trust(sandbox),
        trust_env=False,
        headers={"Authorization": f"Bearer {graph_token(sandbox)}"},
        **options,
    )


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A tiny webhook receiver on loopback that records what it gets."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 202
    echo_validation_token: bool = True


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.requests.append(Received("POST", self.path, dict(self.headers.items()), body))
            token = parse_qs(urlsplit(self.path).query).get("validationToken")
            if token and state.echo_validation_token:
                reply = token[0].encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
            else:
                reply = b""
                self.send_response(state.status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
