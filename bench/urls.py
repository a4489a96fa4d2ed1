from django.urls import include, path

from bench import views

urlpatterns = [
    path("bench/upload/", views.BenchUploadView.as_view()),
    path("bench/post/", views.post_upload),
    path("", include("tests.urls")),
]
