from django.urls import path

from carina.ops import views

app_name = "health"
urlpatterns = [
    path("", views.health, name="all"),
    path("live/", views.live, name="live"),
    path("ready/", views.ready, name="ready"),
]
