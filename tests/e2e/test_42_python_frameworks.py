"""Real WSGI frameworks from Debian's packages under fdtserver (issue #11): Pyramid 2
with traversal (the example in apps/pyramid_example), Flask and Django, one small
application each, driven over HTTP."""
import hashlib
import json
import random

from fdt import ROOT, wait_for
from http_util import Client, get
from test_40_python import PYAPPS, chunked, py_server

PYRAMID = ROOT / "apps" / "pyramid_example"
READY = 90.0  # importing a framework takes seconds, many more under the sanitizers


def test_42_01_pyramid_traversal_example(make_server):
    s = py_server(make_server, wsgi="notes:application", path=PYRAMID,
                  ready_timeout=READY)
    pid = s.worker_pids()
    c = Client(s.port)
    # The root folder's default view, resource URLs from the tree (Host header).
    r = c.request("GET", "/", headers={"Host": "notes.example:8080"})
    assert r.status == 200 and r.header("Content-Type").startswith("application/json")
    assert json.loads(r.body) == {
        "folder": "http://notes.example:8080/",
        "children": {"recipes": "http://notes.example:8080/recipes/"}}
    # A Note (context) and its named view "raw".
    note = json.loads(c.request("GET", "/recipes/bread/").body)
    assert note["text"] == "Flour, water, salt, time."
    assert note["url"] == "http://test/recipes/bread/"
    assert note["folder"] == "http://test/recipes/"
    r = c.request("GET", "/recipes/bread/raw")
    assert (r.status, r.body) == (200, b"Flour, water, salt, time.")
    # The view "add" of a Folder: a JSON body, 201 with the new resource's URL.
    r = c.request("POST", "/recipes/add", headers={"Content-Type": "application/json"},
                  body=json.dumps({"name": "soup", "text": "Water, vegetables."}))
    assert r.status == 201 and r.header("Location") == "http://test/recipes/soup/"
    assert json.loads(c.request("GET", "/recipes/soup/").body)["text"] == "Water, vegetables."
    assert c.request("POST", "/recipes/add", body=b'{"name": "soup"}').status == 409
    assert c.request("POST", "/recipes/add", body=b"not json").status == 400
    # Nested folders: traversal goes as deep as the tree.
    c.request("POST", "/add", body=b'{"name": "deep", "folder": true}')
    c.request("POST", "/deep/add", body=b'{"name": "er", "folder": true}')
    c.request("POST", "/deep/er/add", body=b'{"name": "n", "text": "bottom"}')
    assert c.request("GET", "/deep/er/n/raw").body == b"bottom"
    # Missing resources and views: 404; a view for another method: 404 (predicate).
    assert c.request("GET", "/recipes/nope/x").status == 404
    assert c.request("GET", "/recipes/bread/nosuchview").status == 404
    # A chunked body read line by line as it arrives (request.body_file = wsgi.input).
    wire = b"".join(chunked([b"\nKnead", b".\nBake.\n"]))
    r = c.request("POST", "/recipes/bread/append", headers={"Transfer-Encoding": "chunked"},
                  body=wire)
    assert json.loads(r.body)["lines"] == 3
    assert c.request("GET", "/recipes/bread/raw").body.endswith(b"\nKnead.\nBake.\n")
    # FileResponse goes through wsgi.file_wrapper.
    r = c.request("GET", "/readme")
    assert r.body == (PYRAMID / "README.md").read_bytes()
    c.close()
    assert s.worker_pids() == pid
    assert "Traceback" not in s.log()


def test_42_02_flask(make_server):
    s = py_server(make_server, wsgi="flask_app:app", path=PYAPPS, ready_timeout=READY)
    c = Client(s.port)
    assert c.request("GET", "/hello/fdt").body == b"Hello, fdt!"
    r = c.request("POST", "/json", headers={"Content-Type": "application/json"},
                  body=b'{"a": [1, 2]}')
    assert json.loads(r.body) == {"got": {"a": [1, 2]}, "length": 13}
    data = random.Random(42).randbytes(300000)
    r = c.request("POST", "/upload", headers={"Transfer-Encoding": "chunked"},
                  body=b"".join(chunked([data[:100000], data[100000:]])))
    assert json.loads(r.body) == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    r = c.request("GET", "/stream")
    assert r.header("Transfer-Encoding") == "chunked" and r.body == b"line 0\nline 1\nline 2\n"
    r = c.request("GET", "/file")
    assert r.body == (PYAPPS / "flask_app.py").read_bytes()
    assert c.request("GET", "/teapot").status == 418
    assert c.request("GET", "/nowhere").status == 404
    r = c.request("GET", "/boom")
    assert r.status == 500 and b"flask-boom-detail" not in r.body
    c.close()
    s.wait_log("RuntimeError: flask-boom-detail")  # Flask logs it to wsgi.errors


def test_42_03_django(make_server):
    s = py_server(make_server, wsgi="django_app:application", path=PYAPPS,
                  ready_timeout=READY)
    c = Client(s.port)
    r = c.request("GET", "/hello/fdt/")
    assert (r.status, r.body) == (200, b"Hello, fdt!")
    # CommonMiddleware's APPEND_SLASH redirect.
    r = c.request("GET", "/hello/fdt")
    assert r.status == 301 and r.header("Location") == "/hello/fdt/"
    r = c.request("POST", "/form/", headers={
        "Content-Type": "application/x-www-form-urlencoded"}, body=b"a=1&b=two+words")
    assert json.loads(r.body) == {"fields": {"a": "1", "b": "two words"}, "length": 15}
    assert c.request("GET", "/missing/").status == 404
    r = c.request("GET", "/file/")
    assert r.body == (PYAPPS / "django_app.py").read_bytes()
    r = c.request("GET", "/boom/")
    assert r.status == 500 and b"django-boom-detail" not in r.body
    c.close()
    wait_for(lambda: "django-boom-detail" in s.log(), what="Django's error in the log")
