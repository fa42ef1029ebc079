"""Start Azurite (Azure Storage's local emulator, from npm) on loopback for tests and the demo.

`make test` installs Azurite into `node_modules/` (pinned in package.json); this module starts
it on free loopback ports with in-memory persistence and stops it on exit, also when the
code inside the `with` block fails. Set `AZURITE_CONNECTION_STRING` to use one already running.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Azurite's documented development account. It is public and only opens the local emulator:
#: https://learn.microsoft.com/azure/storage/common/storage-use-azurite#well-known-storage-account-and-key
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteNotInstalled(RuntimeError):
    pass


def connection_string(host: str, blob: int, queue: int, table: int) -> str:
    base = f"http://{host}"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint={base}:{blob}/{DEV_ACCOUNT};QueueEndpoint={base}:{queue}/{DEV_ACCOUNT};"
        f"TableEndpoint={base}:{table}/{DEV_ACCOUNT};"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise AzuriteNotInstalled("Azurite is not installed: run `make setup` (npm install) first")


def _wait_for(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Azurite exited early with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError("Azurite did not start listening within 30 s")


@contextmanager
def running_azurite() -> Iterator[str]:
    """Yield a connection string to an Azurite on 127.0.0.1, stopped when the block ends."""
    existing = os.environ.get("AZURITE_CONNECTION_STRING")
    if existing:
        yield existing
        return
    blob, queue, table = _free_port(), _free_port(), _free_port()
    proc = subprocess.Popen(  # noqa: S603 - our own pinned binary, fixed arguments
        [
            _binary(),
            "--silent",
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableProductStyleUrl",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(blob),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(queue),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(table),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        for port in (blob, queue, table):
            _wait_for(port, proc, deadline)
        yield connection_string("127.0.0.1", blob, queue, table)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
