from django.urls import path

from bench import views
from tests.urls import urlpatterns as test_urlpatterns

# The test project's URLs as they are, not included: its i18n_patterns must stay at the root.
urlpatterns = [
    path("bench/upload/", views.BenchUploadView.as_view()),
    path("bench/post/", views.post_upload),
    *test_urlpatterns,
]
