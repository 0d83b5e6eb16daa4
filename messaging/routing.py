from __future__ import annotations

from django.urls import path

from messaging.consumers import DeviceConsumer, LinkConsumer, StatusConsumer

websocket_urlpatterns = [
    path("ws/status/", StatusConsumer.as_asgi()),
    path("ws/device/", DeviceConsumer.as_asgi()),
    path("ws/link/<str:link_id>/", LinkConsumer.as_asgi()),
]
