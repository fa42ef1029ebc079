"""The command line, and the package's public names."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

import sandbox
from sandbox.__main__ import main
from sandbox.orgfile import load_org

ROOT = Path(__file__).resolve().parents[2]
ENV_KEYS = [
    "ATLASSIAN_API_BASE",
    "ATLASSIAN_ORG_ID",
    "ATLASSIAN_API_KEY",
    "GRAPH_API_BASE",
    "ENTRA_AUTHORITY_HOST",
    "ENTRA_TENANT_ID",
    "ENTRA_CLIENT_ID",
    "ENTRA_CLIENT_SECRET",
    "SEATWARDEN_CA_BUNDLE",
]


def test_public_names_are_pinned() -> None:
    assert set(sandbox.__all__) == {
        "DEFAULT_PER_MINUTE",
        "DEFAULT_PRODUCTS",
        "ENDPOINT_CLASSES",
        "FAULT_KINDS",
        "AdvanceResult",
        "Change",
        "Delivery",
        "Mail",
        "Org",
        "Sandbox",
        "SandboxConfig",
    }


def test_dump_prints_an_org_file_the_loader_reads(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["dump", "--users", "5", "--seed", "3", "--start", "2026-03-02T09:00:00Z"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert len(document["users"]) == 5 and document["clockStart"] == "2026-03-02T09:00:00Z"
    path = tmp_path / "org.json"
    path.write_text(json.dumps(document))
    assert len(load_org(path).users) == 5


def serve(*options: str) -> subprocess.Popen[str]:
    """``python -m sandbox serve`` with these options, its env lines on stdout."""
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", *options],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_prints_env_lines_and_serves_until_stopped() -> None:
    process = serve(
        "--users", "30", "--seed", "2", "--org", str(ROOT / "sandbox" / "examples" / "small-org.json")
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(len(ENV_KEYS))]
        env = dict(line.split("=", 1) for line in lines)
        assert list(env) == ENV_KEYS
        response = httpx.post(
            f"{env['ATLASSIAN_API_BASE']}/v2/orgs/{env['ATLASSIAN_ORG_ID']}/directories/-/users/search",
            json={},
            trust_env=False,
            headers={"Authorization": f"Bearer {env['ATLASSIAN_API_KEY']}"},
        )
        assert len(response.json()["data"]) == 4  # the org file's people
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_serve_reports_a_bad_org_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "org.json"
    broken.write_text("[]")
    assert main(["serve", "--org", str(broken)]) == 1
    assert "org document" in capsys.readouterr().err


def test_serve_with_a_frozen_clock_moves_time_only_when_advanced() -> None:
    process = serve("--users", "20", "--frozen-clock")
    try:
        assert process.stdout is not None
        env = {}
        while "SANDBOX_CONTROL_URL" not in env:
            key, _, value = process.stdout.readline().strip().partition("=")
            env[key] = value
        with httpx.Client(base_url=env["SANDBOX_CONTROL_URL"], trust_env=False) as control:

            def now() -> datetime:
                return datetime.fromisoformat(control.get("/info").json()["now"])

            before = now()
            time.sleep(0.05)
            assert now() == before
            control.post("/advance", json={"days": 1}).raise_for_status()
            assert now() == before + timedelta(days=1)
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
