"""``djust.testing.LiveViewTestClient``: users test their views through the real consumer."""

from __future__ import annotations

import hashlib
import re

import pytest

from djust.testing import LiveViewTestClient, ServerError

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@pytest.fixture
def client(transactional_db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DJUST = {**settings.DJUST, "UPLOAD_DIR": str(tmp_path / "uploads")}
    test_client = LiveViewTestClient()
    yield test_client
    test_client.close()


def test_get_mounts_the_view_and_returns_its_html(client):
    view = client.get("/counter/")
    assert '<output id="count">0</output>' in view.html


def test_event_returns_the_re_rendered_html(client):
    view = client.get("/counter/")
    html = view.event("increment", by=5)
    assert '<output id="count">5</output>' in html


def test_refused_events_raise_server_error_with_the_code(client):
    view = client.get("/counter/")
    with pytest.raises(ServerError) as caught:
        view.event("mount")
    assert caught.value.code == "unknown_event"


def test_upload_then_consume_stores_the_same_bytes(client, settings):
    view = client.get("/profile/")
    result = view.upload("avatar", "me.png", PNG, "image/png")
    assert result.status == "complete"
    html = view.event("save_avatar")
    (name,) = re.findall(r'src="/media/avatars/([0-9a-f]{32}\.png)"', html)  # a unique name
    stored = (settings.MEDIA_ROOT / "avatars" / name).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(PNG).hexdigest()


def test_logged_in_user_reaches_mount(client, django_user_model):
    user = django_user_model.objects.create_user("ada", password="pw")
    client.client.force_login(user)
    view = client.get("/t/whoami/")
    assert "<p id='user'>ada</p>" in view.html


def test_a_token_rendered_for_one_user_cannot_mount_for_another(client, django_user_model):
    from django.test import Client

    user = django_user_model.objects.create_user("ada", password="pw")
    client.client.force_login(user)
    html = client.client.get("/t/whoami/").content.decode()
    stranger = LiveViewTestClient(Client())  # anonymous session
    try:
        with pytest.raises(ServerError) as caught:
            stranger.mount_html(html)
        assert caught.value.code == "bad_token"
    finally:
        stranger.close()


def test_a_broadcast_from_the_test_re_renders_a_subscribed_view(client):
    view = client.get("/t/room/")
    client.broadcast("room", "said", text="from the test", pid=0)
    assert "<li>room said from the test 0</li>" in view.next_render()


def test_a_handler_s_broadcast_reaches_another_view_of_the_same_client(client):
    alice, bob = client.get("/t/room/"), client.get("/t/room/")
    alice.event("say", text="hi bob")
    assert "room said hi bob" in bob.next_render()


def test_next_render_times_out_when_nothing_is_broadcast(client):
    view = client.get("/t/room/?group=quiet")
    client.broadcast("room", "said", text="elsewhere", pid=0)
    with pytest.raises(TimeoutError):
        view.next_render(timeout=0.3)


def test_a_subscribing_view_without_a_channel_layer_fails_to_mount_saying_why(client, settings):
    settings.CHANNEL_LAYERS = {}
    with pytest.raises(ServerError) as caught:
        client.get("/t/room/")
    assert caught.value.code == "mount_failed"
    assert "CHANNEL_LAYERS" in caught.value.payload["message"]


def test_a_secure_page_has_a_secure_request_over_the_socket(client):
    view = client.get("/t/dj/answers/", secure=True)
    assert "<p id='scheme'>https True</p>" in view.html


def test_a_plain_page_has_a_plain_request_over_the_socket(client):
    view = client.get("/t/dj/answers/")
    assert "<p id='scheme'>http False</p>" in view.html


def test_closing_the_client_leaves_no_upload_waiting_to_be_resumed(settings, tmp_path, db):
    """With resume on (the default), a test's uploads do not outlive its client."""
    uploads = tmp_path / "uploads"
    settings.DJUST = {**settings.DJUST, "UPLOAD_DIR": str(uploads), "UPLOAD_RESUME_TTL": 600}
    client = LiveViewTestClient()
    view = client.get("/profile/")
    assert view.upload("avatar", "me.png", PNG, "image/png").status == "complete"
    client.close()
    assert [p.name for p in uploads.iterdir() if p.name != ".djust-id"] == []
