from django.urls import path

from . import views

urlpatterns = [
    path("events/", views.EventsView.as_view()),
    path("items/<int:pk>/", views.ItemView.as_view()),
    path("slow/", views.SlowView.as_view()),
    path("uploads/", views.UploadsView.as_view()),
    path("uploads-reversed/", views.ReversedBasesView.as_view()),
    path("room/", views.RoomView.as_view()),
    path("announce/", views.announce),
    path("room-async/", views.AsyncRoomView.as_view()),
    path("whoami/", views.WhoAmIView.as_view()),
]
