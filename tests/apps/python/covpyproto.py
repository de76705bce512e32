"""WSGI application for tests/e2e/test_17_cov_proto.py: the Python host's refusals of wrong
arguments and misuse, each answered as JSON ["ExceptionName: message", ...]. Runs with a
SQLite resource named lite (table t)."""
import json
import threading

import fdt


def caught(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the test wants the name of whatever it is
        return f"{type(e).__name__}: {e}"
    return "no error"


def answer(start_response, value, headers=()):
    body = json.dumps(value).encode()
    start_response("200 OK", [("Content-Type", "application/json"), *headers])
    return [body]


def misuse(environ, start_response):
    inp, errors = environ["wsgi.input"], environ["wsgi.errors"]

    def raising():
        yield "first line\n"
        raise ValueError("from the generator")

    def released_twice():
        sp = fdt.savepoint()
        sp.release()
        sp.release()

    def outer_released_in_with():
        # Releasing the outer savepoint releases the inner one in the database too: the
        # end of the with block cannot release it again.
        outer = fdt.savepoint()
        with fdt.savepoint():
            outer.release()

    def from_a_thread():
        sp = fdt.savepoint()
        got = []
        t = threading.Thread(target=lambda: got.append(caught(sp.release)))
        t.start()
        t.join()
        sp.release()
        raise RuntimeError(got[0])

    out = [
        caught(lambda: fdt.query(1)),
        caught(lambda: fdt.query("lite", "SELECT ?", ["\ud800"])),
        caught(released_twice),
        caught(outer_released_in_with),
        caught(from_a_thread),
        caught(lambda: fdt._vote(1)),
        caught(lambda: environ["wsgi.file_wrapper"]()),
        caught(lambda: inp.readline("x")),
        caught(lambda: inp.readlines("x")),
        caught(lambda: errors.writelines(5)),
        caught(lambda: errors.writelines(raising())),
        caught(lambda: start_response()),
        inp.readlines(3),
    ]
    return answer(start_response, [x if isinstance(x, str) else [b.decode() for b in x]
                                    for x in out],
                  headers=[("Connection", "keep-alive")])


def late_exc_info(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"head sent\n"
    # After the head: exc_info must be a (type, value, traceback) triple.
    yield caught(lambda: start_response("500 Oops", [], (1,))).encode()


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/misuse":
        return misuse(environ, start_response)
    if path == "/late":
        return late_exc_info(environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such page"]
