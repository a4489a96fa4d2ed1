"""Typed errors. Every error that reaches the client carries a machine-readable ``code``."""

from __future__ import annotations


class DjustError(Exception):
    """Base class: ``code`` goes on the wire, ``message`` is for people."""

    code = "error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__doc__ or self.code)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


# -- protocol ------------------------------------------------------------------------


class ProtocolError(DjustError):
    """The client sent something the protocol does not allow."""

    code = "protocol_error"


class BadFrame(ProtocolError):
    """A binary frame is malformed or of an unknown type."""

    code = "bad_frame"


class BadMessage(ProtocolError):
    """A text message is not valid JSON of a known type."""

    code = "bad_message"


class FrameTooLarge(ProtocolError):
    """A frame exceeds the configured size limit."""

    code = "frame_too_large"


class RateLimited(ProtocolError):
    """The client sends faster than the configured limit."""

    code = "rate_limited"


# -- views and events ----------------------------------------------------------------


class MountError(DjustError):
    """The view could not be mounted."""

    code = "mount_failed"


class BadToken(MountError):
    """The view token is forged, tampered with or names no LiveView."""

    code = "bad_token"


class ExpiredToken(MountError):
    """The view token has expired; reload the page."""

    code = "expired_token"


class AccessDenied(MountError):
    """The view's dispatch-time checks refused this user (login required, no permission)."""

    code = "access_denied"


class SessionEnded(DjustError):
    """The login this page was opened with has ended (logout, password change); reload it."""

    code = "session_ended"


class NotMounted(ProtocolError):
    """An event arrived before the view was mounted."""

    code = "not_mounted"


class UnknownEvent(DjustError):
    """The event names no ``@event_handler`` of the view."""

    code = "unknown_event"


class BadParams(DjustError):
    """An event parameter is missing, unexpected or of the wrong type."""

    code = "bad_params"


class HandlerError(DjustError):
    """The event handler raised."""

    code = "handler_error"


# -- uploads -------------------------------------------------------------------------


class UploadError(DjustError):
    """An upload was rejected; the entry is removed and its bytes discarded."""

    code = "upload_error"


class UnknownSlot(UploadError):
    """No upload slot of that name is configured by the view."""

    code = "unknown_slot"


class TooManyFiles(UploadError):
    """The slot already holds ``max_entries`` files."""

    code = "too_many_files"


class TooLarge(UploadError):
    """The file is larger than the slot's ``max_file_size``."""

    code = "too_large"


class NotAccepted(UploadError):
    """The file's extension or type is not in the slot's ``accept`` list."""

    code = "not_accepted"


class ContentMismatch(UploadError):
    """The file's content does not match its extension or declared type."""

    code = "content_mismatch"


class ActiveContent(UploadError):
    """Active content (SVG, HTML, JavaScript) is refused unless the slot allows it."""

    code = "active_content"


class BadName(UploadError):
    """The file name is unusable (empty or too long)."""

    code = "bad_name"


class BadType(UploadError):
    """The declared MIME type is not exactly one ``type/subtype`` (a list, spaces, garbage)."""

    code = "bad_type"


class BadRef(UploadError):
    """The upload ref is malformed, unknown or already in use."""

    code = "bad_ref"


class BadOffset(UploadError):
    """A chunk's offset is not the next expected byte (gap, duplicate or overlap)."""

    code = "bad_offset"


class WindowExceeded(UploadError):
    """The client sent more unacknowledged bytes than the flow-control window allows."""

    code = "window_exceeded"


class SizeMismatch(UploadError):
    """The bytes received differ from the declared size."""

    code = "size_mismatch"


class BadSize(UploadError):
    """The declared size is not a non-negative integer."""

    code = "bad_size"


class WriteFailed(UploadError):
    """The server could not store the upload (disk full or storage failure)."""

    code = "write_failed"


class UnsafeUploadDir(WriteFailed):
    """The server's upload directory is not private to it: uploads are refused until it is."""

    @property
    def message(self) -> str:
        # The client learns that uploads are refused; the path and its owner are for the server.
        return self.__doc__ or self.code


class UploadDirUnavailable(UnsafeUploadDir):
    """The server cannot create its upload directory: uploads are refused until it can."""


class StalledUpload(UploadError):
    """No bytes arrived for too long."""

    code = "stalled"


class QuotaExceeded(UploadError):
    """A per-connection or per-process limit on uploads was reached."""

    code = "quota_exceeded"


# -- resuming an upload after the connection dropped -------------------------------------


class ResumeExpired(UploadError):
    """The upload to resume is gone: its grace period ended, or it was consumed or cancelled."""

    code = "resume_expired"


class ResumeDenied(UploadError):
    """The upload to resume was registered by another user or in another session."""

    code = "resume_denied"


class FileChanged(UploadError):
    """The file picked to resume an upload is not the one it started with."""

    code = "file_changed"


class ResumeUnavailable(UploadError):
    """The upload lives where this server cannot reach it (an upload directory not shared)."""

    code = "resume_unavailable"
