from django.urls import path

from carina.viewer import views

app_name = "viewer"
urlpatterns = [
    path("app-config.js", views.app_config, name="app-config"),
    path("", views.app, name="index"),
    path("<path:path>", views.app, name="app"),
]
