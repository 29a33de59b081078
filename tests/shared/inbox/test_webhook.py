"""The handoff webhook's signature is GitHub's, and a receiver's answer decides retry or not."""

import httpx
import pytest

from shared.inbox.webhook import SIGNATURE_HEADER, Delivery, classify, headers, post, sign, verify


def test_the_signature_matches_githubs_published_example() -> None:
    # From GitHub's "Validating webhook deliveries" documentation.
    body, secret = b"Hello, World!", "It's a Secret to Everybody"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(body, secret) == expected
    assert verify(body, secret, expected)
    assert not verify(body + b" ", secret, expected)
    assert not verify(body, "another secret", expected)
    assert not verify(body, secret, None)


def test_no_secret_no_signature_header() -> None:
    assert SIGNATURE_HEADER not in headers(b"{}", secret="", delivery_id="h1")
    assert SIGNATURE_HEADER in headers(b"{}", secret="s", delivery_id="h1")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Delivery.DELIVERED),
        (204, Delivery.DELIVERED),
        (408, Delivery.RETRY),
        (429, Delivery.RETRY),
        (500, Delivery.RETRY),
        (503, Delivery.RETRY),
        (400, Delivery.REFUSED),
        (401, Delivery.REFUSED),
        (404, Delivery.REFUSED),
        (410, Delivery.REFUSED),
    ],
)
def test_what_a_receivers_answer_means(status: int, outcome: Delivery) -> None:
    assert classify(httpx.Response(status)) is outcome


def test_an_unreachable_receiver_is_retried() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(refuse)) as client:
        outcome, detail = post(
            client, url="http://127.0.0.1:9/", body=b"{}", secret="s", delivery_id="h", timeout=1
        )
    assert outcome is Delivery.RETRY and "ConnectError" in detail


def test_the_body_sent_is_the_body_signed() -> None:
    seen: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    with httpx.Client(transport=httpx.MockTransport(receive)) as client:
        outcome, _ = post(
            client, url="http://hooks.test/", body=b'{"a":1}', secret="s", delivery_id="h",
            timeout=1,
        )  # fmt: skip
    assert outcome is Delivery.DELIVERED
    (request,) = seen
    assert verify(request.content, "s", request.headers[SIGNATURE_HEADER])
    assert request.headers["X-Support-Assistant-Delivery"] == "h"
