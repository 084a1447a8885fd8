"""The webhook building blocks (jobs/webhooks/): Standard Webhooks signatures, the SSRF
checks on receiver URLs, and one delivery to a real receiver on loopback (plain and TLS)."""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.webhooks import delivery, signing, targets
from jobs.webhooks.targets import Allowance, TargetRefused

# -- signing ----------------------------------------------------------------------------------


def test_the_standard_webhooks_test_vector() -> None:
    """The example of the Standard Webhooks specification's reference libraries."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    got = signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_receiver_verifies_and_refuses_tampering() -> None:
    secret, old = signing.new_secret(), signing.new_secret()
    assert secret.startswith("whsec_") and len(signing.secret_key(secret)) == 32
    body = b'{"id": "job"}'
    h = signing.headers([secret, old], "evt_1", body, timestamp=1_700_000_000)
    args = ("evt_1", h["webhook-timestamp"], h["webhook-signature"])
    signing.verify(secret, *args, body, now=1_700_000_010)
    signing.verify(old, *args, body, now=1_700_000_010)  # during a rotation: either secret
    for bad, why in [
        (dict(body=b'{"id": "jobX"}'), "no webhook-signature"),
        (dict(secret=signing.new_secret()), "no webhook-signature"),
        (dict(now=1_700_000_000 + 3600), "too far"),
    ]:
        kw = dict(secret=secret, body=body, now=1_700_000_010) | bad
        with pytest.raises(signing.SignatureError, match=why):
            signing.verify(kw["secret"], *args, kw["body"], now=kw["now"])
    with pytest.raises(ValueError, match="whsec_"):
        signing.secret_key("plain")


# -- targets ------------------------------------------------------------------------------------

NONE = Allowance()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://100.64.0.1/hook",  # CGNAT
        "https://[fd00:ec2::254]/",  # the IPv6 metadata address
        "https://0.0.0.0/",
        "https://localhost/hook",  # a name that resolves to loopback (this machine's resolver)
    ],
)
def test_non_public_receivers_are_refused_naming_the_address(url: str) -> None:
    with pytest.raises(TargetRefused, match="not public"):
        targets.resolve(url, NONE)


def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    def resolver(host, port, **kw):  # a public and a private answer
        return [(0, 0, 0, "", ("93.184.216.34", port)), (0, 0, 0, "", ("10.1.2.3", port))]

    with pytest.raises(TargetRefused, match="10.1.2.3"):
        targets.resolve("https://hooks.example/x", NONE, resolver=resolver)

    def public(host, port, **kw):
        return [(0, 0, 0, "", ("93.184.216.34", port))]

    t = targets.resolve("https://Hooks.Example:8443/x?a=1", NONE, resolver=public)
    assert (t.host, t.port, t.path, t.addresses) == (
        "hooks.example",
        8443,
        "/x?a=1",
        ("93.184.216.34",),
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://93.184.216.34/", "https"),
        ("ftp://93.184.216.34/", "https"),
        ("https://user:pw@93.184.216.34/", "user name"),
        ("https:///nohost", "host"),
        ("https://93.184.216.34:99999/", "valid URL"),
        ("https://exa mple.com/", "white space"),
        ("https://" + "a" * 2100 + ".com/", "2048"),
        ("https://bad_host!/", "invalid host"),
    ],
)
def test_malformed_urls_are_refused_before_any_lookup(url: str, why: str) -> None:
    def resolver(*a, **kw):
        raise AssertionError("no lookup for a malformed URL")

    with pytest.raises(TargetRefused, match=why):
        targets.resolve(url, NONE, resolver=resolver)


def test_the_operator_allows_hosts_networks_and_http_to_them() -> None:
    allowance = Allowance.parse("127.0.0.1, hooks.internal, 10.9.0.0/16", allow_http=True)
    assert targets.resolve("http://127.0.0.1:8080/h", allowance).addresses == ("127.0.0.1",)
    assert targets.resolve("https://10.9.3.4/", allowance).addresses == ("10.9.3.4",)
    with pytest.raises(TargetRefused):
        targets.resolve("https://10.8.0.1/", allowance)
    with pytest.raises(TargetRefused, match="https"):
        targets.resolve("http://93.184.216.34/", allowance)  # http only to the allowed ones
    with pytest.raises(ValueError, match="not a host name"):
        Allowance.parse("hooks!, 10.0.0.0/8")


# -- delivery ---------------------------------------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []
    bodies: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append((dict(self.headers), body))
        status = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "http://10.0.0.1/")
        payload = b"x" * (1 << 20) if status == 299 else b"ok"
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[int, type[_Receiver]]]:
    handler = type("Handler", (_Receiver,), {"answers": [], "bodies": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


LOOPBACK = Allowance.parse("127.0.0.1", allow_http=True)


def test_a_delivery_posts_signed_json_and_reports_failures(receiver) -> None:
    port, handler = receiver
    handler.answers = [500, 302, 299]
    target = targets.resolve(f"http://127.0.0.1:{port}/hook?x=1", LOOPBACK)
    body = b'{"event": "completed"}'
    headers = signing.headers([signing.new_secret()], "evt_9", body)
    first = delivery.post(target, body, headers)
    assert (first.status, first.ok, first.error) == (500, False, "answered 500")
    redirect = delivery.post(target, body, headers)
    assert redirect.status == 302 and "not followed" in (redirect.error or "")
    big = delivery.post(target, body, headers)
    assert big.ok and len(big.excerpt) <= delivery.EXCERPT_CHARS
    ok = delivery.post(target, body, headers)
    assert ok.ok and ok.status == 200 and ok.latency_ms >= 0
    assert len(handler.bodies) == 4  # the redirect was not followed to 10.0.0.1
    sent_headers, sent = handler.bodies[-1]
    assert sent == body and sent_headers["webhook-id"] == "evt_9"
    assert sent_headers["Content-Type"] == "application/json"


def test_refused_and_silent_receivers_fail_within_the_timeout() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = delivery.post(targets.resolve(f"http://127.0.0.1:{port}/", LOOPBACK), b"{}", {})
    assert refused.status is None and refused.error == "connection refused"
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        target = targets.resolve(f"http://127.0.0.1:{silent.getsockname()[1]}/", LOOPBACK)
        started = time.monotonic()
        result = delivery.post(target, b"{}", {}, timeout_s=0.5)
    assert result.error == "timed out" and time.monotonic() - started < 5


def test_the_retry_schedule_spans_about_an_hour() -> None:
    delays = [delivery.retry_delay(n, jitter=0) for n in range(1, delivery.MAX_ATTEMPTS)]
    assert all(d is not None for d in delays)
    assert 45 * 60 <= sum(d or 0 for d in delays) <= 90 * 60
    assert delays == sorted(delays)
    assert delivery.retry_delay(delivery.MAX_ATTEMPTS) is None


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_goes_to_the_checked_address_and_verifies_the_name(tmp_path: Path) -> None:
    """The connection is made to the pinned address while TLS checks the certificate for
    the name in the URL: a certificate for another name fails."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    handler = type("Handler", (_Receiver,), {"answers": [], "bodies": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        client = ssl.create_default_context(cafile=str(cert))

        def to_loopback(host, p, **kw):
            return [(0, 0, 0, "", ("127.0.0.1", p))]

        allowance = Allowance.parse("127.0.0.1")
        good = targets.resolve(f"https://hooks.test:{port}/", allowance, resolver=to_loopback)
        assert delivery.post(good, b"{}", {}, context=client).ok
        wrong = targets.resolve(f"https://other.test:{port}/", allowance, resolver=to_loopback)
        result = delivery.post(wrong, b"{}", {}, context=client)
        assert not result.ok and "certificate" in (result.error or "").lower()
    finally:
        server.shutdown()
        server.server_close()
