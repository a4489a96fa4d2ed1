from django.urls import path

from bench import engine_views, views
from tests.urls import urlpatterns as test_urlpatterns

# The test project's URLs as they are, not included: its i18n_patterns must stay at the root.
urlpatterns = [
    path("bench/upload/", views.BenchUploadView.as_view()),
    path("bench/post/", views.post_upload),
    path("bench/engines/page/", engine_views.EngineBenchView.as_view()),
    path("bench/client/<str:name>/djust/djust.js", engine_views.client_script),
    *test_urlpatterns,
]
