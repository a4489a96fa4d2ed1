import secrets

from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import render

from djust import LiveView, broadcast
from djust.decorators import event_handler


def index(request):
    return render(request, "pages/index.html")


class CounterView(LiveView):
    """The first page of the demo: clicks, values, confirmations, forms and typing."""

    template_name = "pages/counter.html"

    def mount(self, request, **kwargs):
        self.count = 0
        self.greeting = ""
        self.query = ""
        self.step = 1

    @event_handler
    def set_step(self, value: int = 1, **kwargs):
        self.step = value

    @event_handler
    def increment(self, by: int = 1, **kwargs):
        self.count += by

    @event_handler
    def reset(self, **kwargs):
        self.count = 0

    @event_handler
    def greet(self, name: str = "", **kwargs):
        self.greeting = f"Hello, {name}!" if name else ""

    @event_handler
    def search(self, value: str = "", **kwargs):
        self.query = value


# -- The spec's examples, as written, but for the names files are stored under --------------
#
# The spec saves each file under its client_name: on a storage that overwrites (django-storages'
# S3 and GCS backends by default), one user's "me.png" would replace another's. entry.unique_name()
# gives every file a name of its own.

from django.core.files.storage import default_storage  # noqa: E402

from djust.uploads import UploadMixin  # noqa: E402

from .models import Document  # noqa: E402


class ProfileView(LiveView, UploadMixin):
    template_name = "profile.html"

    def mount(self, request, **kwargs):
        # Configure upload slot
        self.allow_upload(
            "avatar",
            accept=".jpg,.png,.webp",
            max_entries=1,
            max_file_size=5_000_000,  # 5MB
        )
        self.avatar_url = None

    @event_handler
    def save_avatar(self, **kwargs):
        for entry in self.consume_uploaded_entries("avatar"):
            # entry.client_name = original filename
            # entry.client_type = MIME type
            # entry.data = bytes
            # entry.file = BytesIO file object

            path = default_storage.save(entry.unique_name("avatars/"), entry.file)
            self.avatar_url = default_storage.url(path)


class DocumentsView(LiveView, UploadMixin):
    template_name = "documents.html"

    def mount(self, request, **kwargs):
        self.allow_upload(
            "files",
            accept=".pdf,.doc,.docx,.txt",
            max_entries=10,
            max_file_size=25_000_000,  # 25MB
        )
        self.user = request.user
        self.documents = list(Document.objects.filter(user=self.user))
        self.upload_status = None

    @event_handler
    def upload_files(self, **kwargs):
        uploaded = []
        for entry in self.consume_uploaded_entries("files"):
            # Save to storage
            path = default_storage.save(
                entry.unique_name(f"documents/{self.user.id}/", keep_stem=True), entry.file
            )

            # Create database record
            doc = Document.objects.create(
                user=self.user,
                name=entry.client_name,
                file_path=path,
                size=entry.client_size,
                mime_type=entry.client_type,
            )
            uploaded.append(doc)

        self.documents = list(Document.objects.filter(user=self.user))
        self.upload_status = f"Uploaded {len(uploaded)} file(s)"

    @event_handler
    def delete_document(self, doc_id, **kwargs):
        doc = Document.objects.filter(id=doc_id, user=self.user).first()
        if doc:
            default_storage.delete(doc.file_path)
            doc.delete()
            self.documents = list(Document.objects.filter(user=self.user))

    # The spec names this handler cancel_upload, which shadows UploadMixin.cancel_upload and
    # would call itself; djust refuses that name when the class is defined.
    @event_handler
    def cancel_file(self, ref, **kwargs):
        self.cancel_upload("files", ref)


class MyDocumentsView(LoginRequiredMixin, DocumentsView):
    """The spec's view for logged-in users only: the mixin checks the page and the socket."""


class GalleryView(LiveView, UploadMixin):
    """auto_upload=False: files are previewed on selection and sent when the form is submitted."""

    template_name = "pages/gallery.html"

    def mount(self, request, **kwargs):
        self.allow_upload(
            "photos",
            accept="image/*",
            max_entries=4,
            max_file_size=20_000_000,
            auto_upload=False,
        )
        self.saved = []
        self.caption = ""
        # Photos published in other tabs (and by other users) while this page is open.
        self.others = []
        self._viewer = secrets.token_hex(8)
        self.subscribe("gallery")

    @event_handler
    def publish(self, caption: str = "", **kwargs):
        self.caption = caption
        published = []
        for entry in self.consume_uploaded_entries("photos"):
            path = default_storage.save(entry.unique_name("gallery/"), entry.file)
            published.append({"url": default_storage.url(path), "name": entry.client_name})
            self.saved.append({**published[-1], "sha256": entry.sha256})
        if published:
            broadcast("gallery", "published", photos=published, by=self._viewer)

    def handle_broadcast(self, group, event, payload):
        if event == "published" and payload["by"] != self._viewer:
            self.others.extend(payload["photos"])
