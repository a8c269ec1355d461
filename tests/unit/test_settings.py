"""Settings refuse, in a deployed function, what only the local runtime may use."""

from __future__ import annotations

import pytest

from chalicelib.errors import ConfigurationError
from chalicelib.settings import LOCAL_API_KEY, Settings

DEPLOYED = {"AWS_LAMBDA_FUNCTION_NAME": "imgcls-dev-classify"}
REAL_KEYS = "a:tenant-a-key-0123456789"

LOCAL_ONLY = [
    pytest.param("FAULT_RATE", "0.1", id="fault-rate"),
    pytest.param("CRASH_RATE", "0.1", id="crash-rate"),
    pytest.param("WEBHOOK_ALLOW_HOSTS", "127.0.0.1", id="allow-127.0.0.1"),
    pytest.param("WEBHOOK_ALLOW_HOSTS", "localhost", id="allow-localhost"),
    pytest.param("WEBHOOK_ALLOW_HOSTS", "::1", id="allow-::1"),
    pytest.param("WEBHOOK_ALLOW_HOSTS", "127.0.0.1:8080", id="allow-127.0.0.1:8080"),
    pytest.param("WEBHOOK_ALLOW_HOSTS", "hooks.example.org,LOCALHOST", id="allow-among-others"),
    pytest.param("API_KEYS", f"{REAL_KEYS},local:{LOCAL_API_KEY}", id="local-api-key"),
]


@pytest.mark.parametrize(("name", "value"), LOCAL_ONLY)
def test_a_deployed_function_refuses_what_only_the_local_runtime_may_use(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({**DEPLOYED, "API_KEYS": REAL_KEYS, name: value})


@pytest.mark.parametrize(("name", "value"), LOCAL_ONLY)
def test_the_local_runtime_accepts_what_a_deployed_function_refuses(name: str, value: str) -> None:
    settings = Settings.from_env({"API_KEYS": REAL_KEYS, name: value})

    assert not settings.deployed
    assert settings.fault_rate == (0.1 if name == "FAULT_RATE" else 0.0)
    assert settings.crash_rate == (0.1 if name == "CRASH_RATE" else 0.0)
    if name == "WEBHOOK_ALLOW_HOSTS":
        assert settings.webhook_allow_hosts == {h.lower() for h in value.split(",")}
    if name == "API_KEYS":
        assert settings.api_keys[LOCAL_API_KEY] == "local"


def test_a_deployed_function_accepts_public_hosts_and_real_keys() -> None:
    settings = Settings.from_env(
        {**DEPLOYED, "API_KEYS": REAL_KEYS, "WEBHOOK_ALLOW_HOSTS": "hooks.example.org"}
    )

    assert settings.deployed
    assert settings.webhook_allow_hosts == {"hooks.example.org"}
    assert (settings.fault_rate, settings.crash_rate) == (0.0, 0.0)


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("127.1", id="ipv4-shorthand"),
        pytest.param("0.0.0.0", id="unspecified"),
        pytest.param("::ffff:127.0.0.1", id="ipv4-mapped"),
    ],
)
def test_a_deployed_function_refuses_other_spellings_of_the_local_host(host: str) -> None:
    with pytest.raises(ConfigurationError, match="WEBHOOK_ALLOW_HOSTS"):
        Settings.from_env({**DEPLOYED, "API_KEYS": REAL_KEYS, "WEBHOOK_ALLOW_HOSTS": host})
