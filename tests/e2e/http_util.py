"""HTTP helpers for the end-to-end tests: start apps/hello, and a raw-socket client that
sends exactly the bytes a test wants and parses responses strictly."""
from fdt import BUILD, StreamClient

HELLO = str(BUILD / "apps" / "hello.so")


def hello_server(make_server, workers=1, threads=4, server=None, app_keys=None, start=True):
    """fdtserver running apps/hello on one HTTP listener (s.port)."""
    s = make_server(app=HELLO, workers=workers, threads=threads, server=server,
                    app_keys=app_keys, start=False)
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "http"}}
    s.write_config()
    if start:
        s.start()
    return s


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:80]!r}>"


class Client(StreamClient):
    """One connection; send raw bytes, read responses one at a time."""

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head=False):
        """The next response. head=True: the request was HEAD (no body follows)."""
        status_line = self._line().decode()
        version, status, reason = status_line.split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers = []
        while True:
            line = self._line()
            if not line:
                break
            k, _, v = line.decode().partition(":")
            headers.append((k, v.strip()))
        r = Response(version, int(status), reason, headers, b"")
        if head or r.status in (100, 204, 304):
            self.answered += 1
            return r
        te = r.header("Transfer-Encoding")
        cl = r.header("Content-Length")
        if te is not None:
            assert te == "chunked", te
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exact(size)
                assert self._exact(2) == b"\r\n"
            r.body = body
        elif cl is not None:
            r.body = self._exact(int(cl))
        else:
            # Delimited by the end of the connection (HTTP/1.0 streaming).
            try:
                while True:
                    self._fill()
            except ConnectionError:
                pass
            r.body, self.buf = self.buf, b""
        self.answered += 1
        return r

    def request(self, method, path, headers=None, body=b"", version="1.1"):
        """Send one request (Host added for 1.1) and read its response."""
        self.send(build(method, path, headers, body, version))
        return self.read_response(head=(method == "HEAD"))


def build(method, path, headers=None, body=b"", version="1.1"):
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} HTTP/{version}"]
    hs = dict(headers or {})
    if version == "1.1" and not any(k.lower() == "host" for k in hs):
        lines.append("Host: test")
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in hs):
        hs["Content-Length"] = str(len(body))
    lines += [f"{k}: {v}" for k, v in hs.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def get(port, path, **kw):
    c = Client(port)
    try:
        return c.request("GET", path, **kw)
    finally:
        c.close()
