"""Manage API keys and rate limits: ``imgcls-keys create|list|revoke|limit`` (or
``python -m infra.keys``).

Talks to the tenants table of whatever the environment points at: the local runtime's emulator
(``AWS_ENDPOINT_URL=http://127.0.0.1:4566``), LocalStack, or AWS (``TENANTS_TABLE`` set to the
stack's ``TenantsTableName`` output). A new key is printed once; only its hash is stored.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from chalicelib.api_keys import KeyStore
from chalicelib.aws import AwsClients
from chalicelib.errors import AppError, BadRequest, ConfigurationError, TransientError
from chalicelib.rate_limits import Limit, LimitStore
from chalicelib.settings import Settings
from chalicelib.tenant_table import TenantTable

EXIT_CODES = """exit status:
  0  done
  1  the key store refused (unknown key, bad tenant name); the reason is printed as JSON
  2  bad arguments
  3  the tenants table could not be used (no endpoint answers, no such table, no credentials)
"""


def _parser(prog: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create", help="issue a key for a tenant").add_argument("tenant")
    commands.add_parser("list", help="a tenant's keys (ids, never keys)").add_argument("tenant")
    revoke = commands.add_parser("revoke", help="revoke one of a tenant's keys")
    revoke.add_argument("tenant")
    revoke.add_argument("key_id")
    limit = commands.add_parser(
        "limit",
        help="show a tenant's rate limit; with --rps and --burst, give it its own; "
        "--default: back to RATE_LIMIT_RPS and RATE_LIMIT_BURST",
    )
    limit.add_argument("tenant")
    limit.add_argument("--rps", type=float, help="requests a second")
    limit.add_argument("--burst", type=int, help="requests at once")
    limit.add_argument("--default", action="store_true", help="drop the tenant's own limit")
    return parser


def _limit(args: argparse.Namespace, limits: LimitStore) -> object:
    if args.default:
        limits.clear(args.tenant)
    elif args.rps is not None or args.burst is not None:
        if args.rps is None or args.burst is None:
            raise BadRequest("give both --rps and --burst", code="invalid_limit")
        limits.set(args.tenant, Limit(args.rps, args.burst))
    own = limits.get(args.tenant)
    if own is None:
        return {"tenant": args.tenant, "limit": "default (RATE_LIMIT_RPS, RATE_LIMIT_BURST)"}
    return {"tenant": args.tenant, "rps": own.rps, "burst": own.burst}


def _run(args: argparse.Namespace, store: KeyStore, limits: LimitStore) -> object:
    if args.command == "limit":
        return _limit(args, limits)
    if args.command == "create":
        return store.create(args.tenant)
    if args.command == "list":
        return store.list(args.tenant)
    store.revoke(args.tenant, args.key_id)
    return {"revoked": args.key_id}


def explain(exc: Exception, settings: Settings | None) -> str:
    """One line saying why the tenants table could not be used, and what to do about it."""
    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials found (configure a profile or AWS_ACCESS_KEY_ID; "
            "for the local runtime set AWS_ENDPOINT_URL, e.g. http://127.0.0.1:4566)"
        )
    if settings is None:
        return str(exc)
    where = settings.endpoint_url or settings.localstack_host or f"AWS ({settings.region})"
    if isinstance(exc, EndpointConnectionError):
        return f"nothing answers at {where}; is the local runtime running? (make run)"
    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    if code == "ResourceNotFoundException":
        return (
            f"no table {settings.tenants_table!r} at {where} (make run creates it; against AWS "
            "set TENANTS_TABLE to the stack's TenantsTableName output)"
        )
    return f"{where}: {exc}"


def main(
    argv: Sequence[str] | None = None,
    tenants: TenantTable | None = None,
    *,
    prog: str | None = None,
) -> int:
    """Entry point; prints JSON, or one line on stderr when something is wrong."""
    args = _parser(prog).parse_args(argv)
    settings: Settings | None = None
    try:
        if tenants is None:
            settings = Settings.from_env()
            tenants = TenantTable(AwsClients(settings).dynamodb, settings.tenants_table)
        result = _run(args, KeyStore(tenants), LimitStore(tenants))
    except AppError as exc:
        print(json.dumps(exc.to_dict()), file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError, ConfigurationError, TransientError) as exc:
        print(f"error: {explain(exc, settings)}", file=sys.stderr)
        return 3
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m infra.keys"))
