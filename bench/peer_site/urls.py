from django.urls import path

from bench.peer_site.views import PeerUploadView

urlpatterns = [path("up/", PeerUploadView.as_view())]
