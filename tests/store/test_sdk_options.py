"""The Azure SDK clients skip requests' per-call scan of the environment only where the
environment configures nothing for them."""

from __future__ import annotations

import pytest
from azure.core.pipeline.transport import RequestsTransport

from shared.store._base import sdk_client_options


def test_with_no_proxy_or_ca_setting_the_transport_reads_no_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    options = sdk_client_options({"retry_total": 2})
    assert options["retry_total"] == 2
    transport = options["transport"]
    assert isinstance(transport, RequestsTransport) and transport._use_env_settings is False
    assert sdk_client_options({})["transport"] is not transport, "one transport per client"


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "https_proxy", "NO_PROXY", "REQUESTS_CA_BUNDLE"])
def test_a_proxy_or_ca_setting_keeps_the_sdk_default(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "http://proxy.invalid:3128")
    assert sdk_client_options({"retry_total": 2}) == {"retry_total": 2}


def test_a_transport_given_is_kept() -> None:
    mine = RequestsTransport()
    assert sdk_client_options({"transport": mine})["transport"] is mine
