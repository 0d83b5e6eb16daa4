from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from devices.auth import request_device


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"device": request_device(request)})


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
