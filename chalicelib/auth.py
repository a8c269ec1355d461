"""API keys: which tenant is calling."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from chalicelib.errors import Forbidden, Unauthorized

API_KEY_HEADER = "x-api-key"


def authenticate(headers: Mapping[str, str], keys: Mapping[str, str]) -> str:
    """The tenant owning the request's ``x-api-key``; 401 when absent, 403 when unknown."""
    presented = headers.get(API_KEY_HEADER, "").strip()
    if not presented:
        raise Unauthorized(
            f"send your API key in the {API_KEY_HEADER} header", code="missing_api_key"
        )
    tenant = None
    # Compare against every key in constant time so timing reveals nothing about near misses.
    for key, owner in keys.items():
        if hmac.compare_digest(key.encode(), presented.encode()):
            tenant = owner
    if tenant is None:
        raise Forbidden("the API key is not valid", code="invalid_api_key")
    return tenant
