"""apps/hello's answers that no other test asks for: the CPU-bound /spin view, the 400s of
views given a subpath that is not a number or a status, resource URLs and answers too long
to build, and a JSON answer too big to write (a --set version of 5000 bytes)."""
from http_util import get, hello_server


def test_14_20_spin_answers_after_spinning(make_server):
    s = hello_server(make_server)
    r = get(s.port, "/spin/3")
    assert r.status == 200 and r.body == b"spun 3"


def test_14_21_views_refuse_subpaths_they_cannot_read(make_server):
    s = hello_server(make_server)
    for path, msg in (("/spin/x", b"Expected /spin/MILLISECONDS."),
                      ("/sleep/soon", b"Expected /sleep/MILLISECONDS."),
                      ("/stream/many", b"Expected /stream/LINES."),
                      ("/error/200", b"Expected /error/STATUS with a 4xx or 5xx status."),
                      ("/error/600", b"Expected /error/STATUS with a 4xx or 5xx status.")):
        r = get(s.port, path)
        assert r.status == 400, (path, r.status)
        assert msg in r.body, (path, r.body)


def test_14_22_node_answers_too_long_to_build_are_500(make_server):
    s = hello_server(make_server)
    # A name that fits both the URL (2 KiB) and the answer.
    r = get(s.port, "/tree/" + "n" * 1000)
    assert r.status == 200 and r.body.startswith(b"url=/tree/" + b"n" * 1000)
    # The URL fits, but url= and name= together do not fit the 4 KiB answer.
    r = get(s.port, "/tree/" + "n" * 2039)
    assert r.status == 500 and b"The answer is too long." in r.body, r.body[:200]
    # The URL itself does not fit.
    r = get(s.port, "/tree/" + "n" * 2100)
    assert r.status == 500 and b"The resource has no URL." in r.body, r.body[:200]


def test_14_23_json_answer_too_big_to_write_is_500(make_server):
    s = hello_server(make_server, start=False)
    s.start(args=("--set", "app.version=" + "v" * 5000))
    r = get(s.port, "/whoami")
    assert r.status == 500 and b"The answer could not be written." in r.body, r.body[:200]
    assert get(s.port, "/").status == 200
