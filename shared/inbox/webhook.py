"""The handoff webhook: what is POSTed, how it is signed, and what the receiver's answer means.

The body is signed as GitHub signs its webhooks: `X-Signature-256: sha256=<hex>`, the
HMAC-SHA256 of the exact body bytes under HANDOFF_WEBHOOK_SECRET. A receiver recomputes it over
the raw body and compares in constant time (`verify`)."""

import hashlib
import hmac
import json
from enum import StrEnum
from typing import Any

import httpx

from shared.inbox.models import Handoff

EVENT = "conversation.handoff"
SIGNATURE_HEADER = "X-Signature-256"
EVENT_HEADER = "X-Support-Assistant-Event"
DELIVERY_HEADER = "X-Support-Assistant-Delivery"  # the handoff id: receivers drop repeats by it


class WebhookStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # the receiver refused it, or every retry failed


class Delivery(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # the receiver is down or busy: try again later
    REFUSED = "refused"  # the receiver answered that it will never take it


def payload(handoff: Handoff, *, conversation_path: str) -> dict[str, Any]:
    return {
        "event": EVENT,
        "handoff_id": handoff.id,
        "conversation_id": handoff.conversation_id,
        "reason": handoff.reason,
        "created_at": handoff.created_at.isoformat(),
        "conversation_path": conversation_path,
        "packet": handoff.packet,
    }


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str | None) -> bool:
    return signature is not None and hmac.compare_digest(sign(body, secret), signature)


def headers(body: bytes, *, secret: str, delivery_id: str) -> dict[str, str]:
    sent = {
        "Content-Type": "application/json",
        EVENT_HEADER: EVENT,
        DELIVERY_HEADER: delivery_id,
    }
    if secret:
        sent[SIGNATURE_HEADER] = sign(body, secret)
    return sent


def classify(response: httpx.Response) -> Delivery:
    """2xx: delivered. Timeouts of the receiver's own (408), rate limits (429) and server errors:
    worth retrying. Any other answer is the receiver's final word."""
    if response.is_success:
        return Delivery.DELIVERED
    if response.status_code in (408, 425, 429) or response.status_code >= 500:
        return Delivery.RETRY
    return Delivery.REFUSED


def post(
    client: httpx.Client,
    *,
    url: str,
    body: bytes,
    secret: str,
    delivery_id: str,
    timeout: float,
) -> tuple[Delivery, str]:
    """POST once; what became of it and a short reason for the log."""
    try:
        response = client.post(
            url,
            content=body,
            headers=headers(body, secret=secret, delivery_id=delivery_id),
            timeout=timeout,
        )
    except httpx.TransportError as exc:
        return Delivery.RETRY, f"{type(exc).__name__}: {exc}"
    return classify(response), f"HTTP {response.status_code}"
