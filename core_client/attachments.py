"""The attachment routes of a record: streamed upload, download, list, rename, delete.

Uploads stream a base64 JSON body (:mod:`core_client.upload_body`) and downloads stream
into a file (:mod:`core_client.download`), so memory does not grow with the file;
downloads never send the API key to another origin.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from .download import Downloaded, DownloadTarget, _seekable, download_into
from .exceptions import APIError
from .jsonapi import collection_name, one, one_or_none, to_id
from .models import Attachment
from .resources import ResourceClient
from .transport import SinkFactory, Transport
from .upload_body import Base64JSONBody

# resource types that take attachments (docs/itglue-api.md section 5)
ATTACHABLE = frozenset(
    {
        "checklists",
        "checklist_templates",
        "configurations",
        "contacts",
        "documents",
        "domains",
        "locations",
        "passwords",
        "ssl_certificates",
        "flexible_assets",
        "tickets",
    }
)


class Attachments:
    """The ``/<collection>/:id/relationships/attachments`` routes.

    ``client`` sends the plain JSON:API calls; uploads and downloads go through the
    ``transport`` itself (a resendable streamed body, the key-less foreign download).
    """

    def __init__(self, client: ResourceClient, transport: Transport) -> None:
        self._client = client
        self._transport = transport

    def path(self, resource_type: str, resource_id: Any) -> str:
        collection = collection_name(resource_type)
        if collection not in ATTACHABLE:
            raise ValueError(f"{resource_type!r} does not take attachments")
        return f"/{collection}/{resource_id}/relationships/attachments"

    def upload(
        self,
        resource_type: str,
        resource_id: Any,
        *,
        path: str | os.PathLike[str] | None = None,
        stream: IO[bytes] | None = None,
        file_name: str | None = None,
        size: int | None = None,
    ) -> Attachment:
        """Attach a file (from ``path``) or a binary ``stream`` to a resource.

        The base64 JSON body is streamed with a precomputed Content-Length, so memory
        does not grow with the file. A seekable stream is read from its current
        position to the end; a non-seekable one is spooled to a temporary file first
        (its size must be known before sending). An answer lost after sending raises
        :class:`AmbiguousOutcomeError` (list the attachments and match name and size).
        """
        if (path is None) == (stream is None):
            raise ValueError("give exactly one of path= or stream=")
        target = self.path(resource_type, resource_id)
        if path is not None:
            name = file_name or Path(path).name
            with open(path, "rb") as fh:
                return self._send(target, fh, name, os.fstat(fh.fileno()).st_size)
        assert stream is not None
        if not file_name:
            raise ValueError("file_name= is required with stream=")
        if _seekable(stream):
            start = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            stream.seek(start)
            length = end - start if size is None else size
            return self._send(target, stream, file_name, length)
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            while chunk := stream.read(1024 * 1024):
                spool.write(chunk)
            length = spool.tell()
            spool.seek(0)
            return self._send(target, spool, file_name, length)

    def _send(self, target: str, fh: BinaryIO | IO[bytes], name: str, size: int) -> Attachment:
        start = fh.tell()

        def body() -> Base64JSONBody:
            fh.seek(start)  # each attempt (after a 429 or a connect failure) starts over
            return Base64JSONBody(fh, size, name)  # type: ignore[arg-type]

        resp = self._transport.request("POST", target, body_factory=body)  # type: ignore[arg-type]
        return one(resp, Attachment)

    def list(self, resource_type: str, resource_id: Any) -> Iterator[Attachment]:
        return self._client.iter_resources(self.path(resource_type, resource_id), Attachment)

    def get(self, resource_type: str, resource_id: Any, attachment_id: Any) -> Attachment:
        path = f"{self.path(resource_type, resource_id)}/{attachment_id}"
        return one(self._client.request("GET", path), Attachment)

    def download(self, resource_type: str, resource_id: Any, attachment: Attachment | Any) -> bytes:
        """The attachment's bytes in memory (small files; see :meth:`download_to`)."""
        buffer = io.BytesIO()
        self.download_to(resource_type, resource_id, attachment, buffer)
        return buffer.getvalue()

    def download_to(
        self,
        resource_type: str,
        resource_id: Any,
        attachment: Attachment | Any,
        target: DownloadTarget,
    ) -> Downloaded:
        """Stream the attachment from its ``download-url`` (same origin only gets the key)
        into ``target``: a path (written to a temporary file beside it, renamed into place
        once complete) or a binary file object. The size is checked against the
        attachment's ``attachment-file-size``; the sha256 comes back."""
        att = (
            attachment
            if isinstance(attachment, Attachment)
            else self.get(resource_type, resource_id, attachment)
        )
        url = att.download_url
        if not url:
            raise APIError(f"attachment {att.id} has no download URL", status=200)
        if not url.startswith(("https://", "http://")):
            url = self._transport.base_url + "/" + url.lstrip("/")
        # the download path carries an access token: keep it out of logs and errors
        masked = f"<download of attachment {att.id}>"
        # a pre-signed storage URL on another host: never send it the API key
        send_key = self._transport.same_origin(url)

        def fetch(sink: SinkFactory) -> None:
            self._transport.request("GET", url, send_key=send_key, log_path=masked, sink=sink)

        return download_into(target, fetch, expected_size=att.attachment_file_size, what=masked)

    def rename(
        self, resource_type: str, resource_id: Any, attachment_id: Any, name: str
    ) -> Attachment | None:
        """PATCH the display name (the original file name cannot change)."""
        path = f"{self.path(resource_type, resource_id)}/{attachment_id}"
        resp = self._client.request(
            "PATCH", path, json={"data": {"type": "attachments", "attributes": {"name": name}}}
        )
        return one_or_none(resp, Attachment)

    def delete(self, resource_type: str, resource_id: Any, ids: Iterable[Any]) -> None:
        data = [{"type": "attachments", "attributes": {"id": to_id(i)}} for i in ids]
        if data:
            self._client.request(
                "DELETE", self.path(resource_type, resource_id), json={"data": data}
            )


__all__ = ["ATTACHABLE", "Attachments"]
