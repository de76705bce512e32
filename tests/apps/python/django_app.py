"""A minimal Django project in one module (settings, URLs, views; no database) for
tests/e2e/test_42_python_frameworks.py ([app] wsgi = django_app:application)."""
import json

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    DATABASES={},
    INSTALLED_APPS=[],
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    USE_TZ=True,
    # Errors of views to the worker's stderr, which is fdtserver's error log.
    LOGGING={"version": 1, "disable_existing_loggers": False,
             "handlers": {"stderr": {"class": "logging.StreamHandler"}},
             "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}}},
)

import django  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import FileResponse, Http404, HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def hello(request, name):
    return HttpResponse(f"Hello, {name}!", content_type="text/plain")


@csrf_exempt
def form(request):
    if request.method != "POST":
        return HttpResponse(status=405)
    return JsonResponse({"fields": dict(request.POST.items()), "length": len(request.body)})


def missing(request):
    raise Http404("nothing here")


def file(request):
    return FileResponse(open(__file__, "rb"), content_type="text/x-python")


def boom(request):
    raise ValueError("django-boom-detail")


urlpatterns = [
    path("hello/<str:name>/", hello),
    path("form/", form),
    path("missing/", missing),
    path("file/", file),
    path("boom/", boom),
]

django.setup()
application = get_wsgi_application()
