from django.urls import path

from carina.accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("login/code/", views.SecondFactorView.as_view(), name="login-code"),
    path("logout/", views.SignOutView.as_view(), name="logout"),
]
