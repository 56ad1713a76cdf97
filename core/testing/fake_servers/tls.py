"""HTTPS for the fake servers: a throw-away ``trustme`` CA signs the server's certificate on
``start`` and its PEM file, which clients are told to trust, is deleted on ``stop``. ``trustme``
is a test dependency, imported only when a TLS server starts."""

from __future__ import annotations

import shutil
import ssl
import tempfile
from pathlib import Path
from typing import ClassVar

from groundset.core.testing.fake_servers.server import FakeServer

__all__ = ["TLSFakeServer"]


class TLSFakeServer(FakeServer):
    """A :class:`FakeServer` served over HTTPS with a certificate for 127.0.0.1 and localhost."""

    scheme: ClassVar[str] = "https"
    _tmpdir: Path | None = None
    _ca_cert_path: Path | None = None

    def _make_ssl_context(self) -> ssl.SSLContext:
        import trustme  # lazily: a test dependency, needed only for TLS

        ca = trustme.CA()
        cert = ca.issue_cert(self._host, "127.0.0.1", "localhost")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        self._tmpdir = Path(tempfile.mkdtemp(prefix="groundset-fake-tls-"))
        self._ca_cert_path = self._tmpdir / "ca.pem"
        ca.cert_pem.write_to_path(str(self._ca_cert_path))
        return ctx

    def _cleanup(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._tmpdir = self._ca_cert_path = None

    @property
    def ca_cert_path(self) -> str:
        """PEM file of the CA that signed the server certificate (deleted on ``stop``)."""
        if self._ca_cert_path is None:
            raise RuntimeError("server not started")
        return str(self._ca_cert_path)

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting the fake, for ``httpx.Client(verify=...)``.

        httpx 0.28 deprecates ``verify=<path>``; a context avoids the warning.
        """
        return ssl.create_default_context(cafile=self.ca_cert_path)
