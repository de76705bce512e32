"""A module named transaction that is not Zope's (tests/e2e/test_16_cov_python.py): its
TransientError cannot be a base of fdt.ConflictError. fdt says so in the log and keeps
its own class; requests go on."""
import json
import sys
import types

import fdt


class TransientError(OSError):  # a layout no fdt.DatabaseError subclass can share
    pass


fake = types.ModuleType("transaction")
fake_interfaces = types.ModuleType("transaction.interfaces")
fake_interfaces.TransientError = TransientError
fake.interfaces = fake_interfaces
sys.modules["transaction"] = fake
sys.modules["transaction.interfaces"] = fake_interfaces


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps([c.__name__ for c in fdt.ConflictError.__mro__]).encode()]
