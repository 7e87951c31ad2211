"""FlagopsProvider through the real OpenFeature SDK: values, reasons and error codes."""

from __future__ import annotations

import time
import uuid
from typing import Iterator

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from test_client import ENV, SLUGS, bundle, dist, server  # noqa: F401  (fixtures)

from flagops_client import FlagClient
from flagops_client.openfeature import FlagopsProvider


@pytest.fixture
def domain() -> Iterator[str]:
    name = f"svc-{uuid.uuid4().hex[:8]}"
    yield name
    api.clear_providers()


def test_one_line_switch_and_values_equal_the_bundles(server, dist, domain):
    api.set_provider(FlagopsProvider(server.url, environment=ENV, refresh_interval=None), domain)
    flags = api.get_client(domain)
    for slug in SLUGS:
        for key, value in bundle(dist, slug).items():
            details = flags.get_boolean_details(key, not value, EvaluationContext(slug))
            assert (details.value, details.reason, details.error_code) == (value, Reason.STATIC, None)
            assert details.variant == ("on" if value else "off")


def test_reasons_default_targeting_and_errors(server, domain):
    api.set_provider(FlagopsProvider(server.url, environment=ENV, refresh_interval=None), domain)
    flags = api.get_client(domain)
    # No bundle for the tenant and no attributes: the caller's default.
    d = flags.get_boolean_details("always_on", False, EvaluationContext("newco"))
    assert (d.value, d.reason, d.error_code) == (False, Reason.DEFAULT, None)
    # With attributes: evaluated from the rules.
    d = flags.get_boolean_details("dark_mode", False, EvaluationContext("newco2", {"id": "ten-9", "plan": "enterprise"}))
    assert (d.value, d.reason) == (True, Reason.TARGETING_MATCH)
    d = flags.get_boolean_details("always_on", False)
    assert (d.value, d.reason, d.error_code) == (False, Reason.ERROR, ErrorCode.TARGETING_KEY_MISSING)
    d = flags.get_boolean_details("no_such_flag", True, EvaluationContext("acme"))
    assert (d.value, d.reason, d.error_code) == (True, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    d = flags.get_boolean_details("always_on", True, EvaluationContext("Not A Slug"))
    assert (d.value, d.error_code) == (True, ErrorCode.INVALID_CONTEXT)
    s = flags.get_string_details("always_on", "x", EvaluationContext("acme"))
    assert (s.value, s.error_code) == ("x", ErrorCode.TYPE_MISMATCH)


def test_stale_when_the_store_is_gone_and_error_for_unknown_tenants(server, domain):
    client = FlagClient(server.url, ENV, refresh_interval=0.1, timeout=0.3)
    api.set_provider(FlagopsProvider(client), domain)
    flags = api.get_client(domain)
    assert flags.get_boolean_details("always_on", False, EvaluationContext("acme")).reason == Reason.STATIC
    server.stop()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        d = flags.get_boolean_details("always_on", False, EvaluationContext("acme"))
        if d.reason == Reason.STALE:
            break
        time.sleep(0.05)
    assert (d.value, d.reason, d.error_code) == (True, Reason.STALE, None)
    d = flags.get_boolean_details("always_on", True, EvaluationContext("globex"))
    assert (d.value, d.reason, d.error_code) == (True, Reason.ERROR, ErrorCode.GENERAL)
    # A client passed in belongs to the caller: shutting the provider down leaves it running.
    api.clear_providers()
    assert client.status().refreshing
    client.close()


def test_an_owned_client_is_closed_on_shutdown(server, domain):
    provider = FlagopsProvider(server.url, environment=ENV, refresh_interval=30.0)
    api.set_provider(provider, domain)
    assert provider.client.status().refreshing
    api.clear_providers()
    assert not provider.client.status().refreshing
    assert provider.get_metadata().name == "flagops"


def test_snapshot_mode_keeps_every_reason(server, dist, domain):
    from flagops_client.testing import write_head

    write_head(dist, ENV)
    client = FlagClient(server.url, ENV, all_tenants=True, refresh_interval=0.1, timeout=0.5)
    api.set_provider(FlagopsProvider(client), domain)
    flags = api.get_client(domain)
    for slug in SLUGS:
        for key, value in bundle(dist, slug).items():
            d = flags.get_boolean_details(key, not value, EvaluationContext(slug))
            assert (d.value, d.reason, d.error_code) == (value, Reason.STATIC, None)
    d = flags.get_boolean_details("always_on", False, EvaluationContext("newco"))
    assert (d.value, d.reason, d.error_code) == (False, Reason.DEFAULT, None)
    d = flags.get_boolean_details("dark_mode", False, EvaluationContext("newco2", {"id": "ten-9", "plan": "enterprise"}))
    assert (d.value, d.reason) == (True, Reason.TARGETING_MATCH)
    d = flags.get_boolean_details("no_such_flag", True, EvaluationContext("acme"))
    assert (d.value, d.reason, d.error_code) == (True, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    server.stop()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        d = flags.get_boolean_details("always_on", False, EvaluationContext("acme"))
        if d.reason == Reason.STALE:
            break
        time.sleep(0.05)
    assert (d.value, d.reason, d.error_code) == (True, Reason.STALE, None)
    client.close()


def test_snapshot_mode_unavailable_is_an_error(tmp_path, domain):
    api.set_provider(FlagopsProvider(tmp_path.as_uri(), environment=ENV, all_tenants=True,
                                     refresh_interval=None), domain)
    d = api.get_client(domain).get_boolean_details("always_on", True, EvaluationContext("acme"))
    assert (d.value, d.reason, d.error_code) == (True, Reason.ERROR, ErrorCode.GENERAL)
