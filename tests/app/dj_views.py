"""Views written the way a Django project writes them: auth mixins, CSRF forms, messages, i18n."""

import datetime

from django.contrib import messages
from django.contrib.auth.mixins import (
    LoginRequiredMixin,
    PermissionRequiredMixin,
    UserPassesTestMixin,
)
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from djust import LiveView, event_handler

COUNTER = (
    "<p id='n'>{{ n }}</p><button id='inc' dj-click='inc'>+1</button>"
    "<p id='user'>{{ request.user.username|default:'anonymous' }}</p>"
)


class SecretView(LoginRequiredMixin, LiveView):
    """Only for logged-in users; anonymous visitors are sent to the login page."""

    template_string = "<h1 id='secret'>Secret for {{ request.user.username }}</h1>" + COUNTER

    def mount(self, request, **kwargs):
        self.n = 0

    @event_handler
    def inc(self):
        self.n += 1


class StaffOnlyView(PermissionRequiredMixin, LiveView):
    """Needs a permission the demo user does not have: 403 for users, login for visitors."""

    permission_required = "auth.delete_user"
    template_string = "<h1 id='staff'>Staff page</h1>"


class GateView(UserPassesTestMixin, LiveView):
    """Open while the session says so: the socket checks again when it mounts."""

    template_string = "<h1 id='gate'>Gate open</h1>" + COUNTER

    def test_func(self):
        return self.request.session.get("gate") == "open"

    def mount(self, request, **kwargs):
        self.n = 0

    @event_handler
    def inc(self):
        self.n += 1


def set_session(request, key, value):
    """Put ``value`` in this visitor's session (``/t/dj/session/gate/open/``)."""
    request.session[key] = value
    return HttpResponse(f"{key} = {value}")


class MountRedirectView(LiveView):
    """``mount`` answers with a redirect when the query string or the session asks for one."""

    template_string = "<p id='here'>stayed</p>"

    def mount(self, request, **kwargs):
        if request.GET.get("go") or request.session.get("away") == "yes":
            return redirect("/t/events/")
        return None


class GreetingView(LiveView):
    """Class attributes are context; ``as_view(greeting=...)`` overrides them on both paths."""

    greeting = "hello"
    shout = "HEY"
    template_string = (
        "<p id='greeting'>{{ greeting }}</p><p id='shout'>{{ shout }}</p>"
        "<p id='n'>{{ n }}</p><button id='inc' dj-click='inc'>+1</button>"
        "<a id='self' href='{% url \"dj-greeting\" %}'>this page</a>"
    )

    def mount(self, request, **kwargs):
        self.n = 0

    @event_handler
    def inc(self):
        self.n += 1


class FormPageView(LiveView):
    """A live counter beside an ordinary CSRF-protected POST form."""

    template_string = (
        "<form id='plain' method='post' action='/t/dj/posted/'>{% csrf_token %}"
        "<input name='q' value='hello'><button id='send' type='submit'>Send</button></form>"
        + COUNTER
    )

    def mount(self, request, **kwargs):
        self.n = 0

    @event_handler
    def inc(self):
        self.n += 1

    @event_handler
    def nothing(self):
        pass


@require_POST
def posted(request):
    """The target of ``FormPageView``'s form: CSRF-checked like any Django POST view."""
    return HttpResponse(f"<p id='posted'>posted {request.POST.get('q', '')}</p>")


class AnswersView(LiveView):
    """Handlers that answer like Django views: messages, redirects, events for the page."""

    template_string = (
        "<ul id='messages'>{% for m in messages %}<li class='{{ m.tags }}'>{{ m }}</li>"
        "{% endfor %}</ul><p id='n'>{{ n }}</p>"
        "<button id='save' dj-click='save'>Save</button>"
        "<button id='go' dj-click='go'>Go</button>"
        "<button id='go-method' dj-click='go_method'>Go (method)</button>"
        "<button id='notify' dj-click='notify'>Notify</button>"
        "<button id='wrong' dj-click='wrong'>Wrong</button>"
        "<p id='who'>{{ request.user.username|default:'anonymous' }}</p>"
        "<p id='scheme'>{{ request.scheme }} {{ request.is_secure }}</p>"
    )

    def mount(self, request, **kwargs):
        self.n = 0

    @event_handler
    def save(self):
        self.n += 1
        messages.success(self.request, f"Saved {self.n}")

    @event_handler
    def go(self):
        return HttpResponseRedirect("/t/events/")

    @event_handler
    def go_method(self):
        self.redirect("/t/dj/greeting/")

    @event_handler
    def notify(self):
        self.push_event("saved", {"n": 42})

    @event_handler
    def wrong(self):
        return HttpResponse("not a redirect")


class LanguageView(LiveView):
    """Under ``i18n_patterns``: the page's language, a translated date, a typed URL kwarg."""

    template_string = (
        "{% load i18n %}{% get_current_language as lang %}"
        "<p id='lang'>{{ lang }}</p><p id='month'>{{ when|date:'F' }}</p>"
        "<p id='pk'>{{ pk_type }} {{ pk }}</p><p id='n'>{{ n }}</p>"
        "<button id='inc' dj-click='inc'>+1</button><p id='said'>{{ said }}</p>"
    )

    def mount(self, request, pk, **kwargs):
        self.when = datetime.date(2026, 1, 15)
        self.pk = pk
        self.pk_type = type(pk).__name__
        self.n = 0
        self.said = ""

    @event_handler
    def inc(self):
        from django.utils.translation import gettext

        self.n += 1
        self.said = gettext("Yes")


class SubmitterView(LiveView):
    """A ``dj-submit`` form with two submit buttons: the handler learns which one was clicked."""

    template_string = (
        "<form id='post' dj-submit='choose'><input name='title' value='Draft'>"
        "<button id='save' type='submit' name='action' value='save'>Save</button>"
        "<button id='publish' type='submit' name='action' value='publish'>Publish</button>"
        "</form><p id='chosen'>{{ chosen }}</p>"
    )

    def mount(self, request, **kwargs):
        self.chosen = "nothing yet"

    @event_handler
    def choose(self, title: str = "", action: str = "no button"):
        self.chosen = f"{action} {title}"


class SocketRefusedView(LiveView):
    """The page is served but its socket is always refused: the client must not reload in a loop.

    Stands in for checks the socket's request fails while the page's passed (a middleware that
    only the HTTP path runs, a check on something only the page's request carries).
    """

    template_string = "<p id='served'>served over HTTP</p>"

    def dispatch(self, request, *args, **kwargs):
        if getattr(request, "djust_socket", False):
            raise PermissionDenied("not over the socket")
        return super().dispatch(request, *args, **kwargs)


class KeyView(LiveView):
    """A URL kwarg whose converter gives a type JSON does not have (a UUID)."""

    template_string = "<p id='key'>{{ key_type }} {{ key }}</p>"

    def mount(self, request, key, **kwargs):
        self.key = key
        self.key_type = type(key).__name__
