"""Manage API keys: ``python -m infra.keys create|list|revoke``.

Talks to the tenants table of whatever the environment points at: the local runtime's emulator
(``AWS_ENDPOINT_URL=http://127.0.0.1:4566``), LocalStack, or AWS (``TENANTS_TABLE`` set to the
stack's ``TenantsTableName`` output). A new key is printed once; only its hash is stored.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from chalicelib.api_keys import KeyStore
from chalicelib.aws import AwsClients
from chalicelib.errors import AppError
from chalicelib.settings import Settings
from chalicelib.tenant_table import TenantTable


def main(argv: Sequence[str] | None = None, store: KeyStore | None = None) -> int:
    """Entry point; prints JSON."""
    parser = argparse.ArgumentParser(prog="python -m infra.keys", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create", help="issue a key for a tenant").add_argument("tenant")
    commands.add_parser("list", help="a tenant's keys (ids, never keys)").add_argument("tenant")
    revoke = commands.add_parser("revoke", help="revoke one of a tenant's keys")
    revoke.add_argument("tenant")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    if store is None:
        settings = Settings.from_env()
        store = KeyStore(TenantTable(AwsClients(settings).dynamodb, settings.tenants_table))
    try:
        if args.command == "create":
            result: object = store.create(args.tenant)
        elif args.command == "list":
            result = store.list(args.tenant)
        else:
            store.revoke(args.tenant, args.key_id)
            result = {"revoked": args.key_id}
    except AppError as exc:
        print(json.dumps(exc.to_dict()), file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
