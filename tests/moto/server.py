"""moto's server for the tests, with one change: DynamoDB's models are not tracked.

moto keeps every model instance it ever creates, for its /moto-api/data.json page, and each
DynamoDB transaction deep-copies the tables it writes to (to roll back on failure). So every
transaction kept a whole copy of its table alive, and memory grew with the square of the
writes: 600 two-item transactions on one table held 900 MB, and a long test run exhausted the
machine. Nothing the tests read from data.json is a DynamoDB model: the texts and emails sent
(sns SMS, ses Message) are still tracked, and DynamoDB itself is unchanged.

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

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
