from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path, re_path
from django.views.static import serve

from pages import views

urlpatterns = [
    path("", views.index, name="index"),
    path("counter/", views.CounterView.as_view(), name="counter"),
    path("profile/", views.ProfileView.as_view(), name="profile"),
    path("documents/", views.MyDocumentsView.as_view(), name="documents"),
    path("gallery/", views.GalleryView.as_view(), name="gallery"),
    path("login/", auth_views.LoginView.as_view(template_name="pages/login.html"), name="login"),
    # The demo serves uploaded files itself; a real site lets its web server or storage do it.
    re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
]
