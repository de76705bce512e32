"""bench/python/run's Pyramid application: apps/pyramid_example (notes, routed by traversal)
plus one page that runs one PostgreSQL query in the request's transaction.

    GET /recipes/bread/   notes' own Note view (traversal, JSON renderer, resource_url)
    GET /recipes/db       one SELECT in the request's transaction, its row as JSON

Two applications, the same views (each server imports the module that builds its own):

- `pyrbench_fdt:application` for fdtserver: the query goes through the `fdt` module on the
  resource `[resource.pg]`, in the request's fdtserver transaction, which the framework
  commits when the view answers 2xx/3xx (docs/python.md).
- `pyrbench_pg:application` for gunicorn and uWSGI: psycopg2, one connection per thread
  (opened on first use, from the environment variable PYRBENCH_DSN), and a tween doing
  what pyramid_tm does for a single database: the request runs in a transaction that is
  committed when the response is 2xx/3xx and rolled back otherwise or on an exception.
  (Debian's python3-pyramid-tm is 0.5, written for Pyramid 1, and would still need a data
  manager for psycopg2: the tween is the smallest thing doing the same work.)
"""
import os
import sys
import threading

_HERE = os.path.dirname(os.path.abspath(__file__))
_EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(_HERE)), "apps", "pyramid_example")
if _EXAMPLE not in sys.path:
    sys.path.insert(0, _EXAMPLE)

import notes  # noqa: E402  (apps/pyramid_example)
from pyramid.config import Configurator  # noqa: E402

SQL = "SELECT name, body FROM bench_notes WHERE id = {}"


def db_view(context, request):
    """GET /recipes/db: one query in the request's transaction."""
    rows = request.registry.settings["pyrbench.query"](7)
    name, body = rows[0]
    return {"name": name, "body": body, "folder": request.resource_url(context)}


def make(query, tweens=()):
    settings = {"pyrbench.query": query}
    with Configurator(root_factory=notes.root_factory, settings=settings) as config:
        config.scan(notes)
        config.add_view(db_view, context=notes.Folder, name="db", renderer="json",
                        request_method="GET")
        for t in tweens:
            config.add_tween(t)
        return config.make_wsgi_app()


# fdtserver ------------------------------------------------------------------------------

def fdt_query(key):
    import fdt
    return fdt.query("pg", SQL.format("$1"), (key,))


# psycopg2 with a pyramid_tm-style tween ---------------------------------------------------

_LOCAL = threading.local()


def _conn():
    c = getattr(_LOCAL, "conn", None)
    if c is None or c.closed:
        import psycopg2
        c = _LOCAL.conn = psycopg2.connect(os.environ["PYRBENCH_DSN"])
    return c


def psycopg2_query(key):
    with _conn().cursor() as cur:
        cur.execute(SQL.format("%s"), (key,))
        return cur.fetchall()


def tm_tween_factory(handler, registry):
    """Commit the thread's connection when the view answered 2xx/3xx, else roll back.
    psycopg2 begins the transaction at the first statement (not autocommit)."""

    def tm_tween(request):
        try:
            response = handler(request)
        except BaseException:
            c = getattr(_LOCAL, "conn", None)
            if c is not None and not c.closed:
                c.rollback()
            raise
        c = getattr(_LOCAL, "conn", None)
        if c is not None and not c.closed:
            if response.status_int < 400:
                c.commit()
            else:
                c.rollback()
        return response

    return tm_tween
