"""The tenants table: one DynamoDB table of ``(pk, sk)`` records for everything a tenant owns
besides its jobs. Each store that keeps records here (``batch_store``, ``webhook_store``,
``delivery_store``, ``api_keys``) builds its own keys; this module only reads and writes.

A record that belongs to a tenant is only ever read under that tenant's partition
(``tenant_partition``): another tenant's id simply is not there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.dynamo import call, conditional, from_item, serialize, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def tenant_partition(tenant: str) -> str:
    """The partition of everything a tenant owns."""
    return f"TENANT#{tenant}"


def _item(pk: str, sk: str, values: dict[str, Any]) -> dict[str, Any]:
    return {**to_item(values), "pk": {"S": pk}, "sk": {"S": sk}}


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in from_item(item).items() if k not in ("pk", "sk")}


@dataclass(frozen=True)
class Updated:
    """What a conditional update did: the attributes it wrote, or the record that refused it
    (empty when there was none)."""

    done: bool
    values: dict[str, Any]


class TenantTable:
    """Conditional reads and writes of ``(pk, sk)`` records."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def put(self, pk: str, sk: str, values: dict[str, Any], *, only_new: bool = False) -> bool:
        """Write a record; with ``only_new``, False (nothing written) if it already exists."""
        if not only_new:
            call(self._db.put_item, TableName=self._table, Item=_item(pk, sk, values))
            return True
        return conditional(
            self._db.put_item,
            TableName=self._table,
            Item=_item(pk, sk, values),
            ConditionExpression="attribute_not_exists(pk)",
        ).done

    def replace(self, pk: str, sk: str, values: dict[str, Any]) -> bool:
        """Overwrite a record that exists; False (nothing written) if there is none."""
        return conditional(
            self._db.put_item,
            TableName=self._table,
            Item=_item(pk, sk, values),
            ConditionExpression="attribute_exists(pk)",
        ).done

    def put_new_or_get(self, pk: str, sk: str, values: dict[str, Any]) -> dict[str, Any]:
        """Write a record unless one exists; the record that is stored either way."""
        written = conditional(
            self._db.put_item,
            TableName=self._table,
            Item=_item(pk, sk, values),
            ConditionExpression="attribute_not_exists(pk)",
        )
        if written.done or written.old_item is None:
            return dict(values)
        return _plain(written.old_item)

    def update_if(
        self, pk: str, sk: str, *, update: str, condition: str, values: dict[str, Any]
    ) -> Updated:
        """Apply ``update`` when ``condition`` holds (the record may not exist yet)."""
        written = conditional(
            self._db.update_item,
            TableName=self._table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=to_item(values),
            ReturnValues="UPDATED_NEW",
        )
        if written.done and written.response is not None:
            return Updated(True, from_item(written.response.get("Attributes", {})))
        return Updated(False, _plain(written.old_item) if written.old_item else {})

    def get(self, pk: str, sk: str, *, consistent: bool = True) -> dict[str, Any] | None:
        """One record, or None; ``consistent=False`` reads at half the cost, maybe a little
        behind the latest write."""
        resp = call(
            self._db.get_item,
            TableName=self._table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            ConsistentRead=consistent,
        )
        item = resp.get("Item")
        return _plain(item) if item else None

    def query(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        """Every record of ``pk`` whose sort key starts with ``prefix``."""
        out: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        while True:
            resp = call(self._db.query, **request)
            out.extend(_plain(item) for item in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return out
            request["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def between(self, pk: str, low: str, high: str) -> list[dict[str, Any]]:
        """Every record of ``pk`` whose sort key is from ``low`` to ``high`` (eventually
        consistent: for reports, at half the read cost)."""
        out: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":pk": {"S": pk},
                ":low": {"S": low},
                ":high": {"S": high},
            },
        }
        while True:
            resp = call(self._db.query, **request)
            out.extend(_plain(item) for item in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return out
            request["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def delete(self, pk: str, sk: str) -> bool:
        """Remove a record; False if there was none."""
        return conditional(
            self._db.delete_item,
            TableName=self._table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            ConditionExpression="attribute_exists(pk)",
        ).done

    def take(self, pk: str, sk: str) -> dict[str, Any] | None:
        """Remove a record; the record as it was, or None if there was none."""
        written = conditional(
            self._db.delete_item,
            TableName=self._table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            ConditionExpression="attribute_exists(pk)",
            ReturnValues="ALL_OLD",
        )
        return None if written.response is None else _plain(written.response.get("Attributes", {}))

    def delete_if(
        self,
        pk: str,
        sk: str,
        *,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> bool:
        """Remove a record only when ``condition`` holds; False otherwise (or if it is gone)."""
        return conditional(
            self._db.delete_item,
            TableName=self._table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            ConditionExpression=f"attribute_exists(pk) AND ({condition})",
            ExpressionAttributeValues={k: serialize(v) for k, v in values.items()},
            **({"ExpressionAttributeNames": names} if names else {}),
        ).done

    def put_many(self, records: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Write records (overwriting), 25 to a request; ``None`` values are left out."""
        for start in range(0, len(records), 25):
            requests: list[Any] = [
                {"PutRequest": {"Item": _item(pk, sk, _present(values))}}
                for pk, sk, values in records[start : start + 25]
            ]
            while requests:
                resp = call(self._db.batch_write_item, RequestItems={self._table: requests})
                requests = list(resp.get("UnprocessedItems", {}).get(self._table, []))

    def delete_many(self, keys: list[tuple[str, str]]) -> None:
        """Remove records (gone already is fine), 25 to a request."""
        for start in range(0, len(keys), 25):
            requests: list[Any] = [
                {"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}}
                for pk, sk in keys[start : start + 25]
            ]
            while requests:
                resp = call(self._db.batch_write_item, RequestItems={self._table: requests})
                requests = list(resp.get("UnprocessedItems", {}).get(self._table, []))

    def put_if(
        self,
        pk: str,
        sk: str,
        values: dict[str, Any],
        *,
        condition: str,
        names: dict[str, str],
        condition_values: dict[str, Any],
    ) -> bool:
        """Write a record only when ``condition`` holds (or it does not exist yet)."""
        return conditional(
            self._db.put_item,
            TableName=self._table,
            Item=_item(pk, sk, values),
            ConditionExpression=f"attribute_not_exists(pk) OR ({condition})",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(condition_values),
        ).done

    def update(
        self,
        pk: str,
        sk: str,
        expression: str,
        *,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        condition: str = "attribute_exists(pk)",
    ) -> dict[str, Any] | None:
        """Update a record in place when ``condition`` holds (by default: it exists); the
        record as it is afterwards, or None when the condition refused the update."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ReturnValues": "ALL_NEW",
        }
        if names:
            request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = {k: serialize(v) for k, v in values.items()}
        written = conditional(self._db.update_item, **request)
        if written.response is None:
            return None
        return _plain(written.response.get("Attributes", {}))

    def page(
        self, pk: str, prefix: str, *, limit: int, after: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` records of ``pk`` under ``prefix``, by descending sort key, starting
        after the sort key ``after``; the records and the sort key to continue after (or None)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
            "ScanIndexForward": False,
            "Limit": limit,
            "ConsistentRead": True,
        }
        if after is not None:
            request["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": after}}
        resp = call(self._db.query, **request)
        last = resp.get("LastEvaluatedKey")
        return [_plain(item) for item in resp.get("Items", [])], last["sk"]["S"] if last else None
