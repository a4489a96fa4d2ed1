from django.conf.urls.i18n import i18n_patterns
from django.urls import include, path

from demo_project.urls import urlpatterns as demo_urlpatterns
from tests.app.dj_views import KeyView, LanguageView

urlpatterns = [
    path("t/", include("tests.app.urls")),
    *demo_urlpatterns,
    *i18n_patterns(
        path("t/lang/<int:pk>/", LanguageView.as_view()),
        path("t/key/<uuid:key>/", KeyView.as_view()),
    ),
]
