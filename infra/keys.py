"""Manage API keys: ``imgcls-keys create|list|revoke`` (or ``python -m infra.keys``).

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
from chalicelib.errors import AppError, ConfigurationError, TransientError
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
    return parser


def _run(args: argparse.Namespace, store: KeyStore) -> object:
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
    argv: Sequence[str] | None = None, store: KeyStore | None = None, *, prog: str | None = None
) -> int:
    """Entry point; prints JSON, or one line on stderr when something is wrong."""
    args = _parser(prog).parse_args(argv)
    settings: Settings | None = None
    try:
        if store is None:
            settings = Settings.from_env()
            store = KeyStore(TenantTable(AwsClients(settings).dynamodb, settings.tenants_table))
        result = _run(args, store)
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
