"""The host indexes the app before any setting exists: importing it needs no settings or network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LIST_FUNCTIONS = """
import json, socket

def refuse(*args, **kwargs):
    raise AssertionError("network use while indexing")

socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

import function_app
print(json.dumps(sorted(f.get_function_name() for f in function_app.app.get_functions())))
"""


def test_the_app_indexes_with_no_settings_and_no_network() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LIST_FUNCTIONS],
        cwd=ROOT,
        env={},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(names) == len(set(names))
    assert set(names) >= set(
        [
            "health",
            "nightly_reconcile",
            "execute_action",
            "record_poisoned_action",
            "atlassian_webhook",
            "graph_webhook",
            "graph_lifecycle_webhook",
            "handle_return",
            "handle_graph",
            "send_warnings",
            "keep_subscriptions",
            "poll_org_events",
            "list_runs",
            "show_run",
            "approve_run",
            "idp_csv",
            "audit",
            "relicense",
            "report",
        ]
    )
