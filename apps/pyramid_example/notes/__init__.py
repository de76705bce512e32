"""notes: a small Pyramid 2 application that routes by traversal, served by fdtserver.

The URL is resolved against a tree of resources, as fdtserver's own C applications are
(docs/http.md): /, /recipes/, /recipes/bread/ are a Folder, a Folder and a Note; what
is left of the path after the last resource is the view name (/recipes/bread/raw).
Views are registered for a resource class (the context) and a name, never for a URL
pattern. docs/python.md walks through it.

The tree lives in the worker process's memory (one tree per worker), which keeps the
example small; an application keeps its data in a database.
"""
import threading

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPBadRequest, HTTPConflict, HTTPCreated
from pyramid.response import FileResponse
from pyramid.view import view_config
import os


class Folder(dict):
    """A container: its children are its items. __name__ and __parent__ make the
    resource location-aware, so that request.resource_url() works."""

    def __init__(self, name, parent):
        super().__init__()
        self.__name__ = name
        self.__parent__ = parent


class Note:
    """A leaf: no __getitem__, so traversal stops here and the next segment is a view
    name."""

    def __init__(self, name, parent, text):
        self.__name__ = name
        self.__parent__ = parent
        self.text = text


LOCK = threading.Lock()  # requests run on several threads of the worker
ROOT = Folder("", None)
ROOT["recipes"] = Folder("recipes", ROOT)
ROOT["recipes"]["bread"] = Note("bread", ROOT["recipes"], "Flour, water, salt, time.")


def root_factory(request):
    """Traversal starts here for every request."""
    return ROOT


@view_config(context=Folder, renderer="json", request_method="GET")
def folder_view(context, request):
    """GET /recipes/: the folder's children, each with its URL."""
    with LOCK:
        children = sorted(context.items())
    return {
        "folder": request.resource_url(context),
        "children": {name: request.resource_url(child) for name, child in children},
    }


@view_config(context=Folder, name="add", renderer="json", request_method="POST")
def add_view(context, request):
    """POST /recipes/add with {"name": ..., "text": ...} (or "folder": true): a new child."""
    try:
        body = request.json_body
        name = body["name"]
    except (ValueError, KeyError, TypeError):
        raise HTTPBadRequest(json_body={"error": "expected {\"name\": ..., \"text\": ...}"})
    if not isinstance(name, str) or not name or "/" in name or name.startswith("@@"):
        raise HTTPBadRequest(json_body={"error": "bad name"})
    with LOCK:
        if name in context:
            raise HTTPConflict(json_body={"error": f"{name} exists"})
        child = Folder(name, context) if body.get("folder") else Note(name, context,
                                                                        str(body.get("text", "")))
        context[name] = child
    request.response.status = "201 Created"
    request.response.location = request.resource_url(child)
    return {"created": request.resource_url(child)}


@view_config(context=Note, renderer="json", request_method="GET")
def note_view(context, request):
    """GET /recipes/bread/: the note."""
    return {"name": context.__name__, "text": context.text,
            "url": request.resource_url(context),
            "folder": request.resource_url(context.__parent__)}


@view_config(context=Note, name="raw", request_method="GET")
def raw_view(context, request):
    """GET /recipes/bread/raw: the text alone (a named view of a Note)."""
    response = request.response
    response.content_type = "text/plain"
    response.text = context.text
    return response


@view_config(context=Note, name="append", request_method="POST", renderer="json")
def append_view(context, request):
    """POST /recipes/bread/append: the request body (any size, read as it arrives) is
    appended to the note, line by line."""
    added = 0
    for line in request.body_file:  # wsgi.input, streamed
        with LOCK:
            context.text += line.decode("utf-8", "replace")
        added += 1
    return {"lines": added, "length": len(context.text)}


@view_config(context=Folder, name="readme", request_method="GET")
def readme_view(context, request):
    """GET /readme: this example's README, sent with wsgi.file_wrapper (sendfile)."""
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")
    return FileResponse(path, request=request, content_type="text/markdown")


def main():
    with Configurator(root_factory=root_factory) as config:
        config.scan(__name__)
        return config.make_wsgi_app()


application = main()
