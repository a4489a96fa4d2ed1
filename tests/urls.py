from django.urls import include, path

from demo_project.urls import urlpatterns as demo_urlpatterns

urlpatterns = [path("t/", include("tests.app.urls")), *demo_urlpatterns]
