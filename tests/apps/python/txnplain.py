"""A WSGI application using the fdt module without Zope's transaction package (which it
never imports): the framework alone decides by the status (test_41_01)."""
import json

import fdt


def application(environ, start_response):
    parts = environ["PATH_INFO"].strip("/").split("/")
    if parts[0] == "bases":  # without Zope's package, fdt.ConflictError is fdt's alone
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps([c.__name__ for c in fdt.ConflictError.__mro__]).encode()]
    n = int(environ.get("CONTENT_LENGTH") or 0)
    sql = environ["wsgi.input"].read(n).decode()
    n = fdt.execute(parts[1], sql)
    if parts[0] == "raise":
        raise RuntimeError("the application failed after its statement")
    status = {200: "200 OK", 201: "201 Created", 303: "303 See Other", 404: "404 Not Found",
              409: "409 Conflict", 500: "500 Internal Server Error"}[int(parts[2])]
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps({"rows": n}).encode()]
