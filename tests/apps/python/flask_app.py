"""A small Flask application for tests/e2e/test_42_python_frameworks.py
([app] wsgi = flask_app:app)."""
import hashlib

from flask import Flask, Response, abort, jsonify, request, send_file, stream_with_context

app = Flask(__name__)


@app.get("/hello/<name>")
def hello(name):
    return f"Hello, {name}!"


@app.post("/json")
def echo_json():
    data = request.get_json()  # reads wsgi.input (Content-Length)
    return jsonify(got=data, length=request.content_length)


@app.post("/upload")
def upload():
    # request.stream: werkzeug reads wsgi.input as it arrives; for a chunked body
    # (no CONTENT_LENGTH) it relies on wsgi.input_terminated.
    h, n = hashlib.sha256(), 0
    while True:
        piece = request.stream.read(65536)
        if not piece:
            break
        h.update(piece)
        n += len(piece)
    return jsonify(bytes=n, sha256=h.hexdigest())


@app.get("/stream")
def stream():
    def gen():
        for i in range(3):
            yield f"line {i}\n"
    return Response(stream_with_context(gen()), mimetype="text/plain")


@app.get("/file")
def file():
    # send_file uses wsgi.file_wrapper when the server offers it.
    return send_file(__file__, mimetype="application/octet-stream")


@app.get("/teapot")
def teapot():
    abort(418)


@app.get("/boom")
def boom():
    raise RuntimeError("flask-boom-detail")
