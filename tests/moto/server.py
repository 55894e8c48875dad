"""moto's server for the tests, with two changes to how DynamoDB keeps its state.

moto keeps every model instance it ever creates, for its /moto-api/data.json page, and each
DynamoDB transaction deep-copies the tables it writes to (to roll back on failure). So every
transaction kept a whole copy of its table alive, and memory grew with the square of the
writes: 600 two-item transactions on one table held 900 MB, and a long test run exhausted the
machine. Nothing the tests read from data.json is a DynamoDB model: the texts and emails sent
(sns SMS, ses Message) are still tracked, and DynamoDB itself is unchanged.

A transaction's rollback copy is of the items it names, not of its whole table. moto deep-copies
the table once per item of a transaction, so a five-item transaction on a table of a few
thousand items took 250-600 ms and the time grew with the table. The transaction is still all
or nothing: when it fails, every item it named is put back as it was before (or removed, if it
did not exist), which is all a failed transaction can have changed.

Run as `python server.py -H 127.0.0.1 -p PORT`, with the arguments of moto_server.
"""

import sys

from moto.core.common_models import BaseModel

_tracked_new = BaseModel.__new__


def _new(cls, *args, **kwargs):
    if cls.__module__.startswith("moto.dynamodb."):
        return object.__new__(cls)
    return _tracked_new(cls, *args, **kwargs)


BaseModel.__new__ = staticmethod(_new)


import copy  # noqa: E402
import threading  # noqa: E402

import moto.dynamodb.models as dynamodb  # noqa: E402
from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: E402

_in_transaction = threading.local()


class _Copy:
    """The copy module as moto's DynamoDB backend sees it: inside a transaction, the copy of a
    whole table is the table itself (the items are saved one by one instead)."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, *args, **kwargs):
        if getattr(_in_transaction, "active", False) and isinstance(value, dynamodb.Table):
            return value
        return copy.deepcopy(value, *args, **kwargs)


dynamodb.copy = _Copy()
_transact = dynamodb.DynamoDBBackend.transact_write_items


def _key_of(table, op):
    key = op.get("Key") or {
        name: value
        for name, value in op.get("Item", {}).items()
        if name in (table.hash_key_attr, table.range_key_attr)
    }
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.has_range_key else None
    return hash_value, range_value


def _transact_write_items(self, transact_items):
    saved = []
    for entry in transact_items:
        op = next(iter(entry.values()))
        table = self.tables.get(op.get("TableName"))
        if table is None:
            continue
        try:
            hash_value, range_value = _key_of(table, op)
        except (KeyError, TypeError):
            continue  # moto itself refuses the malformed item
        item = table.get_item(hash_value, range_value)
        saved.append((table, hash_value, range_value, copy.deepcopy(item)))
    _in_transaction.active = True
    try:
        return _transact(self, transact_items)
    except Exception:
        for table, hash_value, range_value, item in reversed(saved):
            if item is None:
                if range_value is None:
                    table.items.pop(hash_value, None)
                elif hash_value in table.items:
                    table.items[hash_value].pop(range_value, None)
            elif range_value is None:
                table.items[hash_value] = item
            else:
                table.items[hash_value][range_value] = item
        raise
    finally:
        _in_transaction.active = False


dynamodb.DynamoDBBackend.transact_write_items = _transact_write_items

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
