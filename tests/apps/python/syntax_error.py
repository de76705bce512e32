# A module that cannot be imported (tests/e2e/test_40_python.py).
def application(environ, start_response)
    return [b"never"]
