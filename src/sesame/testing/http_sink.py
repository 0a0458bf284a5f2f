"""An HTTP endpoint on a free port that records what is POSTed to it: an SNS subscriber for tests.

    with HttpSink() as sink:
        sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=sink.url)
        confirmation = sink.wait_for(lambda r: r.json()["Type"] == "SubscriptionConfirmation")

``status`` is what it answers (set 500 to play a failing endpoint); ``stop()`` closes the port (an
endpoint that is down) and ``start()`` opens the same port again. ``verify_sns_signature`` checks an SNS
message the way a subscriber does, written from AWS's description and independent of Sesame's signer.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpSink:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._cond = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sns"

    def start(self) -> HttpSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = sink.status
                if 200 <= status < 300:  # a failing endpoint did not take the message
                    with sink._cond:
                        sink.received.append(Received(self.path, headers, body))
                        sink._cond.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True  # start() again on the port a stop() closed
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(
        self, match: Callable[[Received], bool], timeout: float = 20.0, count: int = 1
    ) -> list[Received]:
        """The first ``count`` requests ``match`` accepts, once that many have come (AssertionError after
        ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.received if match(r)]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(found)} of {count} expected requests came ({len(self.received)} in all)"
                    )
                self._cond.wait(left)

    def __enter__(self) -> HttpSink:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION,
    "UnsubscribeConfirmation": _CONFIRMATION,
}


def verify_sns_signature(doc: dict[str, Any]) -> None:
    """Raise unless ``doc`` carries a valid signature by the certificate at its SigningCertURL."""
    pem = httpx.get(doc["SigningCertURL"]).raise_for_status().content
    key = x509.load_pem_x509_certificate(pem).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    text = "".join(f"{name}\n{doc[name]}\n" for name in _SIGNED[doc["Type"]] if name in doc)
    digest = {"1": hashes.SHA1(), "2": hashes.SHA256()}[doc["SignatureVersion"]]
    key.verify(base64.b64decode(doc["Signature"]), text.encode(), padding.PKCS1v15(), digest)
