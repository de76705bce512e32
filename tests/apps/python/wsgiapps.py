"""WSGI applications for tests/e2e/test_40_python.py, one module served by fdtserver
([app] wsgi = wsgiapps:application, [python] path = this directory).

application routes by PATH_INFO:
  /                 Hello, world!
  /echo             the request body back (POST), read with wsgi.input.read()
  /lines            the body's lines counted with readline(), readlines() and iteration
  /env              a JSON object with the CGI keys of the environ and wsgi.* types
  /boom             raises: a 500, the traceback in the log
  /bad-status       start_response("OK", ...): a 500 and a log line
  /bad-header       a header value with a newline: a 500 and a log line
  /str              returns [str] instead of [bytes]: a 500 and a log line
  /none             returns None (not iterable): a 500 and a log line
  /bytes-status     start_response(b"200 OK", ...): TypeError, a 500
  /no-start         returns a body without calling start_response: a 500 and a log line
  /write-str        write("text"): TypeError, a 500
  /twice            start_response twice without exc_info: RuntimeError, a 500
  /close?PATH       an iterable whose close() writes PATH (the test checks it exists)
  /stream           a generator of three chunks (streamed)
  /write            the write() callable, then an iterable
  /late-error       start_response, then raise with exc_info after a chunk went out
  /errors           writes two lines to wsgi.errors
  /upload           reads the body with read(65536) until b"": JSON with its size, sha256
                    and the largest piece read
  /upload-lines     reads the body with readline(100) and iteration: JSON with the lines
  /ignore           answers without reading the body
  /status?TEXT      start_response with the status TEXT (percent-decoded, as UTF-8)
  /file?PATH        the file PATH through wsgi.file_wrapper (sendfile); its close() writes
                    PATH.closed
  /file-part?PATH   the same from offset 1000, Content-Length 5000: those 5000 bytes
  /file-memory      wsgi.file_wrapper around an io.BytesIO (no fileno(): iterated)
  /rss              the worker's VmRSS and VmHWM (kB) from /proc/self/status
  /validated/...    the same routes wrapped in wsgiref.validate.validator
"""
import hashlib
import io
import json
import sys
from wsgiref.validate import validator

TEXT = [("Content-Type", "text/plain")]


def hello(environ, start_response):
    start_response("200 OK", list(TEXT))
    return [b"Hello, world!"]


def echo(environ, start_response):
    if environ.get("CONTENT_LENGTH"):
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
    else:  # chunked: no CONTENT_LENGTH, read to the end (wsgi.input_terminated)
        body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body]


def lines(environ, start_response):
    inp = environ["wsgi.input"]
    first = inp.readline()
    rest = inp.readlines()
    out = {"first": first.decode("latin-1"), "rest": len(rest)}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(out).encode()]


def env(environ, start_response):
    out = {k: v for k, v in environ.items() if isinstance(v, str)}
    out["wsgi.version"] = list(environ["wsgi.version"])
    for k in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once"):
        out[k] = environ[k]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(out, sort_keys=True).encode()]


def boom(environ, start_response):
    raise ValueError("secret-detail-42")


def bad_status(environ, start_response):
    start_response("OK", list(TEXT))
    return [b"never"]


def bad_header(environ, start_response):
    start_response("200 OK", [("X-Bad", "a\r\nInjected: yes")])
    return [b"never"]


def returns_str(environ, start_response):
    start_response("200 OK", list(TEXT))
    return ["not bytes"]


def returns_none(environ, start_response):
    start_response("200 OK", list(TEXT))


def bytes_status(environ, start_response):
    start_response(b"200 OK", list(TEXT))
    return [b"never"]


def no_start(environ, start_response):
    return [b"never"]


def write_str(environ, start_response):
    start_response("200 OK", list(TEXT))("never")
    return []


def twice(environ, start_response):
    start_response("200 OK", list(TEXT))
    start_response("201 Created", list(TEXT))
    return [b"never"]


class Closing:
    def __init__(self, path):
        self.path = path

    def __iter__(self):
        yield b"one "
        yield b"two"

    def close(self):
        with open(self.path, "w") as f:
            f.write("closed")


def closing(environ, start_response):
    start_response("200 OK", list(TEXT))
    return Closing(environ["QUERY_STRING"])


def stream(environ, start_response):
    start_response("200 OK", list(TEXT))
    for i in range(3):
        yield b"chunk %d\n" % i


def write(environ, start_response):
    w = start_response("200 OK", list(TEXT))
    w(b"written ")
    return [b"returned"]


def late_error(environ, start_response):
    start_response("200 OK", list(TEXT))
    yield b"partial"
    try:
        raise RuntimeError("late")
    except RuntimeError:
        start_response("500 Internal Server Error", list(TEXT), sys.exc_info())


def errors(environ, start_response):
    environ["wsgi.errors"].write("first error line\nsecond error line\n")
    environ["wsgi.errors"].flush()
    start_response("200 OK", list(TEXT))
    return [b"logged"]


def upload(environ, start_response):
    inp = environ["wsgi.input"]
    h, total, biggest = hashlib.sha256(), 0, 0
    while True:
        piece = inp.read(65536)
        if not piece:
            break
        h.update(piece)
        total += len(piece)
        biggest = max(biggest, len(piece))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"bytes": total, "sha256": h.hexdigest(), "biggest": biggest}).encode()]


def write_then_upload(environ, start_response):
    """QUERY_STRING bytes written before the body is read (the answer backs up first)."""
    w = start_response("200 OK", [("Content-Type", "application/octet-stream")])
    w(b"w" * int(environ["QUERY_STRING"]))
    body = environ["wsgi.input"].read()
    return [b"|" + json.dumps({"bytes": len(body),
                               "sha256": hashlib.sha256(body).hexdigest()}).encode()]


def upload_lines(environ, start_response):
    inp = environ["wsgi.input"]
    first = inp.readline(100)  # at most 100 bytes, even of a longer line
    rest = [line.decode("latin-1") for line in inp]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"first": first.decode("latin-1"), "rest": rest}).encode()]


def ignore(environ, start_response):
    start_response("200 OK", list(TEXT))
    return [b"ignored"]


def status(environ, start_response):
    from urllib.parse import unquote
    start_response(unquote(environ["QUERY_STRING"]), list(TEXT))
    return [b"status body"]


class MarkedFile(io.FileIO):
    """A real file whose close() leaves a mark, to see that the server called it."""

    def close(self):
        if not self.closed:
            with open(self.name + ".closed", "w") as f:
                f.write("closed")
        super().close()


def file(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](MarkedFile(environ["QUERY_STRING"]), 65536)


def file_part(environ, start_response):
    f = open(environ["QUERY_STRING"], "rb")
    f.seek(1000)
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", "5000")])
    return environ["wsgi.file_wrapper"](f)


def file_memory(environ, start_response):
    start_response("200 OK", list(TEXT))
    return environ["wsgi.file_wrapper"](io.BytesIO(b"in memory " * 1000), 4096)


def rss(environ, start_response):
    with open("/proc/self/status") as f:
        kv = dict(line.split(":", 1) for line in f if ":" in line)
    out = {k: int(kv[k].split()[0]) for k in ("VmRSS", "VmHWM")}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(out).encode()]


KEPT = {}


def misuse(environ, start_response):
    """Wrong calls an application may make: each raises a clear exception, and the
    request goes on. The objects are kept for /misuse-later."""
    out = []

    def attempt(name, fn):
        try:
            fn()
            out.append(f"{name}: no error")
        except Exception as e:  # noqa: BLE001 - reported to the test
            out.append(f"{name}: {type(e).__name__}: {e}")

    errors = environ["wsgi.errors"]
    attempt("errors.write bytes", lambda: errors.write(b"x"))
    errors.writelines(["first of two\n", "second of two\n"])
    errors.flush()
    attempt("input.read(1, 2)", lambda: environ["wsgi.input"].read(1, 2))
    attempt("tuple headers", lambda: start_response("200 OK", (("A", "b"),)))
    attempt("header not a pair", lambda: start_response("200 OK", [("A",)]))
    write = start_response("200 OK", [("Content-Type", "application/json")])
    KEPT.update(write=write, start_response=start_response, input=environ["wsgi.input"])
    return [json.dumps(out).encode()]


def misuse_later(environ, start_response):
    """What /misuse kept, used after its request ended."""
    out = []
    for name, fn in (("write", lambda: KEPT["write"](b"late")),
                     ("start_response", lambda: KEPT["start_response"]("200 OK", [])),
                     ("input.read", lambda: KEPT["input"].read())):
        try:
            fn()
            out.append(f"{name}: no error")
        except Exception as e:  # noqa: BLE001 - reported to the test
            out.append(f"{name}: {type(e).__name__}: {e}")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(out).encode()]


ROUTES = {
    "/misuse": misuse, "/misuse-later": misuse_later,
    "/": hello, "/echo": echo, "/lines": lines, "/env": env, "/boom": boom,
    "/bad-status": bad_status, "/bad-header": bad_header, "/str": returns_str,
    "/none": returns_none, "/bytes-status": bytes_status, "/no-start": no_start,
    "/write-str": write_str, "/twice": twice, "/close": closing, "/stream": stream, "/write": write, "/late-error": late_error,
    "/errors": errors, "/upload": upload, "/upload-lines": upload_lines,
    "/write-then-upload": write_then_upload, "/ignore": ignore,
    "/rss": rss, "/status": status, "/file": file, "/file-part": file_part,
    "/file-memory": file_memory,
}


def not_found(environ, start_response):
    start_response("404 Not Found", list(TEXT))
    return [b"no such page: " + environ["PATH_INFO"].encode("latin-1")]


def route(environ, start_response):
    return ROUTES.get(environ["PATH_INFO"], not_found)(environ, start_response)


checked = validator(route)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/validated/"):
        environ["PATH_INFO"] = path[len("/validated"):]
        return checked(environ, start_response)
    return route(environ, start_response)


not_callable = 42
