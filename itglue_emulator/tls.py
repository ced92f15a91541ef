"""A throw-away test CA (trustme) and the server certificate for 127.0.0.1/localhost.

The CA's PEM goes to a private temporary directory so clients can point ``verify=`` /
``ca_bundle`` at it; ``close()`` removes it. Nothing is written anywhere else.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from pathlib import Path

import trustme


class TestCertificateAuthority:
    __test__ = False  # not a pytest test class, despite the name

    def __init__(self) -> None:
        self._ca = trustme.CA(organization_name="itglue-ingest emulator")
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost", "::1")
        self._dir = Path(tempfile.mkdtemp(prefix="itglue-emulator-ca-"))
        self.ca_file = self._dir / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
