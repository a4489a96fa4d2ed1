from django.contrib.auth import views as auth_views
from django.urls import path

from . import dj_views, s3_direct, views

urlpatterns = [
    path("events/", views.EventsView.as_view()),
    path("items/<int:pk>/", views.ItemView.as_view()),
    path("slow/", views.SlowView.as_view()),
    path("uploads/", views.UploadsView.as_view()),
    path("uploads-reversed/", views.ReversedBasesView.as_view()),
    path("late-containers/", views.LateContainersView.as_view()),
    path("uploads-lifecycle/", views.LifecycleView.as_view()),
    path("uploads-races/", views.RacesView.as_view()),
    path("uploads-s3/", views.S3UploadsView.as_view()),
    path("uploads-s3-direct/", s3_direct.DirectView.as_view()),
    path("upload-ui/", views.UploadUIView.as_view()),
    path("big-upload/", views.BigUploadView.as_view()),
    path("big-upload-nap/", views.NappingUploadView.as_view()),
    path("room/", views.RoomView.as_view()),
    path("announce/", views.announce),
    path("room-async/", views.AsyncRoomView.as_view()),
    path("whoami/", views.WhoAmIView.as_view()),
    path("form-params/", views.FormParamsView.as_view()),
    path("users/", views.UsersView.as_view()),
    path("logout/", auth_views.LogoutView.as_view(next_page="/login/")),
    path("password/", auth_views.PasswordChangeView.as_view(success_url="/t/whoami/")),
]

urlpatterns += [
    path("dj/secret/", dj_views.SecretView.as_view()),
    path("dj/staff/", dj_views.StaffOnlyView.as_view()),
    path("dj/gate/", dj_views.GateView.as_view()),
    path("dj/session/<str:key>/<str:value>/", dj_views.set_session),
    path("dj/mount-redirect/", dj_views.MountRedirectView.as_view()),
    path("dj/greeting/", dj_views.GreetingView.as_view(), name="dj-greeting"),
    path("dj/bonjour/", dj_views.GreetingView.as_view(greeting="bonjour")),
    path("dj/form/", dj_views.FormPageView.as_view()),
    path("dj/posted/", dj_views.posted),
    path("dj/answers/", dj_views.AnswersView.as_view()),
    path("dj/submitter/", dj_views.SubmitterView.as_view()),
    path("dj/socket-refused/", dj_views.SocketRefusedView.as_view()),
]
