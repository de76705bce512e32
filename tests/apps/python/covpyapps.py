"""WSGI applications for tests/e2e/test_16_cov_python.py: the edges of PEP 3333 that
wsgiapps.py does not reach (results and iterators that misbehave, headers the framework
refuses, wsgi.file_wrapper around things that are not plain files, a client that leaves
while the application still writes). One module served with [app] wsgi =
covpyapps:application; routes by PATH_INFO (see ROUTES), the query string is a route's
argument.
"""
import io
import json
import os
import time

TEXT = [("Content-Type", "text/plain")]


def answer(start_response, data, status="200 OK"):
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(data).encode()]


def env(environ, start_response):
    """The str items of the environ, as JSON."""
    return answer(start_response, {k: v for k, v in environ.items() if isinstance(v, str)})


def echo(environ, start_response):
    """The whole body back, read with read() (no size: to the end)."""
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body]


def misuse(environ, start_response):
    """Wrong or edge calls on the wsgi.* objects: each reported, the request goes on."""
    out = []

    def attempt(name, fn):
        try:
            out.append(f"{name}: {fn()!r}")
        except Exception as e:  # noqa: BLE001 - reported to the test
            out.append(f"{name}: {type(e).__name__}: {e}")

    errors = environ["wsgi.errors"]
    attempt("writelines with bytes", lambda: errors.writelines(["logged before\n", b"x"]))
    attempt("readline(0)", lambda: environ["wsgi.input"].readline(0))
    attempt("blksize 0", lambda: environ["wsgi.file_wrapper"](io.BytesIO(b"x"), 0))
    return answer(start_response, out)


def readlines(environ, start_response):
    """All lines with readlines() (a malformed body raises OSError: not caught)."""
    lines = environ["wsgi.input"].readlines()
    return answer(start_response, [line.decode("latin-1") for line in lines])


def status_surrogate(environ, start_response):
    start_response("200 \ud800", list(TEXT))  # neither latin-1 nor UTF-8
    return [b"never"]


def header_not_latin1(environ, start_response):
    start_response("200 OK", [("X-Check", "\u2713")])
    return [b"never"]


def header_too_big(environ, start_response):
    start_response("200 OK", [("X-Big", "v" * 70000)])
    return [b"never"]


def write_bad_header(environ, start_response):
    write = start_response("200 OK", [("X-Bad", "a\nInjected: yes")])
    write(b"never")  # the head is checked now: ValueError, not caught
    return []


def raises_first(environ, start_response):
    start_response("200 OK", list(TEXT))
    raise_now = True
    if raise_now:
        raise RuntimeError("the iterator failed before its first item")
    yield b"never"


def empty_generator(environ, start_response):
    start_response("200 OK", list(TEXT))
    return
    yield b"never"


class OneStr:
    """An iterable that says it has one item, and yields a str."""

    def __len__(self):
        return 1

    def __iter__(self):
        yield "one str"


def len1_str(environ, start_response):
    start_response("200 OK", list(TEXT))
    return OneStr()


def stream_then_str(environ, start_response):
    start_response("200 OK", list(TEXT))
    yield b"first "
    yield b"second "
    yield "third, a str"


class CloseFails:
    def __iter__(self):
        yield b"body "
        yield b"sent"

    def close(self):
        raise RuntimeError("close failed after the response")


def close_raises(environ, start_response):
    start_response("200 OK", list(TEXT))
    return CloseFails()


def file_bad_status(environ, start_response):
    start_response("OK", list(TEXT))
    return environ["wsgi.file_wrapper"](open(environ["QUERY_STRING"], "rb"))


def file_pipe(environ, start_response):
    """A file wrapper around a pipe (a real descriptor, not a regular file): iterated."""
    r, w = os.pipe()
    os.write(w, b"through a pipe")
    os.close(w)
    start_response("200 OK", list(TEXT))
    return environ["wsgi.file_wrapper"](os.fdopen(r, "rb"), 4)


class ReadOnly:
    """A file-like object with read() and nothing else (no close, no fileno)."""

    def __init__(self, data):
        self.data = data

    def read(self, n):
        piece, self.data = self.data[:n], self.data[n:]
        return piece


def file_no_close(environ, start_response):
    start_response("200 OK", list(TEXT))
    return environ["wsgi.file_wrapper"](ReadOnly(b"no close here"), 5)


def file_short(environ, start_response):
    """A regular file whose size (fstat) is more than it holds: a sysfs file says 4096."""
    start_response("200 OK", list(TEXT))
    return environ["wsgi.file_wrapper"](open(environ["QUERY_STRING"], "rb"))


def write_until_gone(environ, start_response):
    """write() until the client has gone (bounded): the OSError is written to the file
    named by the query string."""
    mark = environ["QUERY_STRING"]
    write = start_response("200 OK", list(TEXT))
    write(b"first piece\n")
    deadline = time.monotonic() + 20
    while not os.path.exists(mark + ".go") and time.monotonic() < deadline:
        time.sleep(0.01)
    outcome = "no error after 4000 writes"
    for i in range(4000):
        try:
            write(b"x" * 65536)
        except OSError as e:
            outcome = f"{type(e).__name__}: {e}"
            break
    with open(mark, "w") as f:
        f.write(outcome)
    return []


class OneBytes:
    """An iterable that says it has one item, a bytes."""

    def __len__(self):
        return 1

    def __iter__(self):
        yield b"one item"


class SaysOneYieldsThree:
    """An iterable whose len() says one item, and that yields three."""

    def __len__(self):
        return 1

    def __iter__(self):
        yield b"one "
        yield b"two "
        yield b"three"


def len1_three(environ, start_response):
    start_response("200 OK", list(TEXT))
    return SaysOneYieldsThree()


def errors_surrogate(environ, start_response):
    """wsgi.errors.write() of a str that has no UTF-8 form: what the application sees."""
    try:
        environ["wsgi.errors"].write("lone \udc80 surrogate")
        out = "no error"
    except UnicodeEncodeError as e:
        out = f"UnicodeEncodeError: {e.reason}"
    return answer(start_response, out)


def len1_bad_status(environ, start_response):
    start_response("OK", list(TEXT))
    return OneBytes()


def stream_bad_status(environ, start_response):
    start_response("OK", list(TEXT))
    yield b"never "
    yield b"sent"


def file_devnull(environ, start_response):
    """A real file that is not a regular one (a character device): iterated."""
    start_response("200 OK", list(TEXT))
    return environ["wsgi.file_wrapper"](open("/dev/null", "rb"))


class MarkOnClose(io.FileIO):
    """This module's own file, leaving a mark when closed."""

    def __init__(self, mark):
        super().__init__(__file__)
        self.mark = mark

    def close(self):
        if not self.closed:
            with open(self.mark, "w") as f:
                f.write("closed")
        super().close()


class OneItemMarked(OneBytes):
    def __init__(self, mark):
        self.mark = mark

    def close(self):
        with open(self.mark, "w") as f:
            f.write("closed")


def after_gone(environ, start_response):
    """/after-gone?MARK&KIND: once MARK.go exists (the client has gone), answer with one
    item (KIND whole) or a file (KIND file); close() writes MARK."""
    mark, kind = environ["QUERY_STRING"].split("&")
    deadline = time.monotonic() + 20
    while not os.path.exists(mark + ".go") and time.monotonic() < deadline:
        time.sleep(0.01)
    start_response("200 OK", list(TEXT))
    if kind == "file":
        return environ["wsgi.file_wrapper"](MarkOnClose(mark))
    return OneItemMarked(mark)


def arm(environ, start_response):
    """/arm?N: the N+1-th Python allocation after this application returns fails, once
    (_testcapi.set_nomemory: CPython's allocator hooks for tests). What fails is in the
    answer of this request (joining its two items) or of the next one (its environ)."""
    import _testcapi
    n = int(environ["QUERY_STRING"])
    start_response("200 OK", list(TEXT))
    body = [b"armed ", b"%d" % n]
    _testcapi.set_nomemory(n, n + 1)
    return body


def disarm(environ, start_response):
    import _testcapi
    _testcapi.remove_mem_hooks()
    return answer(start_response, "disarmed")


def nomem_input(environ, start_response, call):
    """call(wsgi.input) with the N+1-th allocation failing (N the query string): the
    length of what it returned, or the MemoryError."""
    import _testcapi
    n = int(environ["QUERY_STRING"])
    inp = environ["wsgi.input"]
    _testcapi.set_nomemory(n, n + 1)
    try:
        out = len(call(inp))
    except MemoryError:
        out = "MemoryError"
    finally:
        _testcapi.remove_mem_hooks()
    return answer(start_response, out)


def nomem_file_wrapper(environ, start_response):
    """/nomem-file-wrapper?N: wsgi.file_wrapper(...) with the N+1-th allocation failing."""
    return nomem_input(environ, start_response,
                       lambda inp: [environ["wsgi.file_wrapper"](inp, 4096)])


def nomem_readlines(environ, start_response):
    """/nomem-readlines?N: readlines() with the N+1-th allocation failing."""
    return nomem_input(environ, start_response, lambda inp: inp.readlines())


def nomem_read(environ, start_response):
    """/nomem-read?N: read() of the whole body with the N+1-th allocation failing."""
    return nomem_input(environ, start_response, lambda inp: inp.read())


ROUTES = {
    "/len1-bad-status": len1_bad_status, "/stream-bad-status": stream_bad_status,
    "/file-devnull": file_devnull, "/after-gone": after_gone,
    "/arm": arm, "/disarm": disarm, "/nomem-readlines": nomem_readlines,
    "/nomem-read": nomem_read, "/len1-three": len1_three,
    "/errors-surrogate": errors_surrogate, "/nomem-file-wrapper": nomem_file_wrapper,
    "/env": env, "/echo": echo, "/misuse": misuse, "/readlines": readlines,
    "/status-surrogate": status_surrogate, "/header-not-latin1": header_not_latin1,
    "/header-too-big": header_too_big, "/write-bad-header": write_bad_header,
    "/raises-first": raises_first, "/empty-generator": empty_generator,
    "/len1-str": len1_str, "/stream-then-str": stream_then_str,
    "/close-raises": close_raises, "/file-bad-status": file_bad_status,
    "/file-pipe": file_pipe, "/file-no-close": file_no_close, "/file-short": file_short,
    "/write-until-gone": write_until_gone,
}


def application(environ, start_response):
    fn = ROUTES.get(environ["PATH_INFO"])
    if fn is None:
        start_response("404 Not Found", list(TEXT))
        return [b"no such page"]
    return fn(environ, start_response)
