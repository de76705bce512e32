"""JSON-RPC mappings for tests/e2e/test_16_cov_python.py ([app] jsonrpc = covpyrpc:NAME)."""


def echo(params):
    return params


def big(params):
    return "x" * params["size"]


class HashedOtherwise(str):
    """A method name whose hash is not its text's: the mapping cannot find it by name."""

    def __hash__(self):
        return 1


def arm(params):
    """The params[0]+1-th Python allocation from here on fails, once (_testcapi)."""
    import _testcapi
    _testcapi.set_nomemory(params[0], params[0] + 1)


def disarm(params):
    import _testcapi
    _testcapi.remove_mem_hooks()
    return "disarmed"


methods = {"echo": echo, "big": big, HashedOtherwise("odd"): echo, "arm": arm,
           "disarm": disarm}
int_key = {1: echo}
builtin_name = {"txn.mine": echo}
empty_name = {"": echo}
