"""Traversal over HTTP: percent-decoding, empty segments, '.' and '..', missing keys, view
lookup with 405 and Allow, and resource URLs that lead back to their resource."""
import urllib.parse

from http_util import Client, get, hello_server


def node(r):
    """The url/name/depth lines of a tree node's answer."""
    assert r.status == 200, r
    return dict(line.split("=", 1) for line in r.body.decode().splitlines())


def test_10_40_percent_escapes_empty_segments_and_dots(make_server):
    s = hello_server(make_server)
    assert node(get(s.port, "/tree/a%20b/")) == {"url": "/tree/a%20b/", "name": "a b",
                                                 "depth": "2"}
    assert node(get(s.port, "//tree///a//b//"))["url"] == "/tree/a/b/"
    assert node(get(s.port, "/tree/./a/./b/."))["url"] == "/tree/a/b/"
    assert node(get(s.port, "/tree/a/x/../b"))["url"] == "/tree/a/b/"
    assert node(get(s.port, "/tree/a/%2e%2E/b"))["url"] == "/tree/b/"
    assert node(get(s.port, "/tree/%C3%A9t%C3%A9"))["name"] == "\u00e9t\u00e9"
    assert node(get(s.port, "/tree/..."))["name"] == "..."
    # '..' back to the root: the root's default view.
    assert get(s.port, "/tree/..").body == b"Hello, world!"
    # The query string is not part of traversal.
    assert node(get(s.port, "/tree/q?x=/../y"))["url"] == "/tree/q/"


def test_10_41_bad_paths_get_400(make_server):
    s = hello_server(make_server)
    for path in ["/..", "/tree/../..", "/tree/a%2Fb", "/tree/a%2fb", "/tree/%00", "/tree/%",
                 "/tree/%4", "/tree/%zz"]:
        r = get(s.port, path)
        assert r.status == 400, (path, r)


def test_10_42_missing_keys_and_unknown_views_get_404(make_server):
    s = hello_server(make_server)
    assert get(s.port, "/nope").status == 404
    # The missing key becomes the view name, and a node has no view called "missing".
    assert get(s.port, "/tree/a/missing").status == 404
    assert get(s.port, "/tree/a/missing/more").status == 404
    # /whoami takes no subpath.
    assert get(s.port, "/whoami/extra").status == 404
    # An explicit view name with @@.
    assert node(get(s.port, "/tree/a/@@"))["url"] == "/tree/a/"


def test_10_43_methods_without_a_view_get_405_with_allow(make_server):
    s = hello_server(make_server)
    c = Client(s.port)
    r = c.request("DELETE", "/tree/a/")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD, PUT"
    r = c.request("POST", "/", body=b"x")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD"
    r = c.request("PUT", "/tree/a/", body=b"x")
    assert r.status == 204 and r.header("Content-Length") is None
    r = c.request("HEAD", "/tree/a")
    assert r.status == 200 and int(r.header("Content-Length")) > 0


def test_10_44_resource_urls_round_trip_through_traversal(make_server):
    s = hello_server(make_server)
    names = ["plain", "with space", "caf\u00e9", "a+b", "100%", "q?x", "h#f", "semi;colon",
             "~tilde-._", "quote\"", "a&b=c", "..."]
    c = Client(s.port)
    for name in names:
        # Any correct encoding of the name leads to the node ...
        r = node(c.request("GET", "/tree/" + urllib.parse.quote(name, safe="") + "/deeper"))
        assert r["name"] == "deeper"
        url = r["url"]
        assert url.startswith("/tree/") and url.endswith("/deeper/")
        # ... and the URL the framework builds leads back to the same resource.
        again = node(c.request("GET", url))
        assert again["url"] == url and again["depth"] == "3"
        parent = node(c.request("GET", url + ".."))
        assert parent["name"] == name


def test_10_45_absolute_form_targets(make_server):
    s = hello_server(make_server)
    c = Client(s.port)
    c.send(b"GET http://example.com/tree/a%20b HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert node(c.read_response())["name"] == "a b"
