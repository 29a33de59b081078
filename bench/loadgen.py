"""A small HTTP/1.1 load generator: keep-alive connections on raw asyncio streams, each sending
the next request as soon as the previous answer is read. Prints its figures as one JSON object.

    python bench/loadgen.py http://127.0.0.1:8000/api/v1/ask \
        --body '{"question": "How do I track my order? (ref {tag})"}' \
        --header 'Prefer: respond-async' --connections 32 --warmup 1 --duration 10
    python bench/loadgen.py URL --body '…' --total 2000     # exactly 2000 requests, then stop

Every request's body differs: `{tag}` becomes the request's number written in consonants ("cbg"
for 104), and several `--body` templates take turns. Run it as a process of its own, so that
it never shares a GIL with what it measures.
"""

import argparse
import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CONSONANTS = "bcdfghjklm"


def tag(number: int) -> str:
    """`number` as consonants, one a digit (104 -> "cbg"): neither a word nor a figure, which
    the answer engine's checks would refuse to let a model's wording speak to."""
    return "".join(CONSONANTS[int(digit)] for digit in str(number))


@dataclass
class Stats:
    window_start: float
    window_end: float
    in_window: Counter[int] = field(default_factory=Counter)  # status -> responses in the window
    total: Counter[int] = field(default_factory=Counter)  # status -> every response
    latencies: list[float] = field(default_factory=list)  # seconds, responses in the window
    errors: int = 0  # connections that failed mid-request

    def record(self, status: int, sent: float, done: float) -> None:
        self.total[status] += 1
        if self.window_start <= done < self.window_end:
            self.in_window[status] += 1
            self.latencies.append(done - sent)


class Requests:
    """The requests to send, pre-encoded but for each body's tag and length."""

    def __init__(self, url: str, headers: list[str], bodies: list[str], total: int | None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        head = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {self.host}:{self.port}", *headers]
        self.prefix = ("\r\n".join([*head, "Content-Type: application/json", ""])).encode()
        self.bodies = [body.encode() for body in bodies]
        self.numbers = itertools.count()
        self.total = total

    def next(self) -> bytes | None:
        number = next(self.numbers)
        if self.total is not None and number >= self.total:
            return None
        template = self.bodies[number % len(self.bodies)]
        body = template.replace(b"{tag}", tag(number).encode())
        return self.prefix + b"Content-Length: %d\r\n\r\n" % len(body) + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of one response, read whole; whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, keep_alive = 0, False, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            keep_alive = b"close" not in value
    if chunked:
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")  # the empty line after the last chunk (no trailers)
    elif length:
        await reader.readexactly(length)
    return status, keep_alive


async def connection(requests: Requests, stats: Stats, until: float) -> None:
    """One keep-alive connection sending requests back to back until `until` or the last one."""
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    try:
        while time.monotonic() < until and (request := requests.next()) is not None:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection(requests.host, requests.port)
            sent = time.monotonic()
            writer.write(request)
            try:
                status, keep_alive = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                stats.errors += 1
                keep_alive = False
            else:
                stats.record(status, sent, time.monotonic())
            if not keep_alive:
                writer.close()
                writer = reader = None
    finally:
        if writer is not None:
            writer.close()


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    requests = Requests(args.url, args.header, args.body, args.total)
    started = time.monotonic()
    if args.total is not None:
        window_start, window_end, until = started, float("inf"), float("inf")
    else:
        window_start = started + args.warmup
        window_end = until = window_start + args.duration
    stats = Stats(window_start, window_end)
    await asyncio.gather(*(connection(requests, stats, until) for _ in range(args.connections)))
    finished = time.monotonic()
    seconds = (window_end if args.total is None else finished) - window_start
    accepted = sum(count for status, count in stats.in_window.items() if 200 <= status < 300)
    p50, p99 = percentile(stats.latencies, 0.5), percentile(stats.latencies, 0.99)
    return {
        "seconds": seconds,
        "accepted_per_second": accepted / seconds if seconds > 0 else 0.0,
        "in_window": {str(status): count for status, count in sorted(stats.in_window.items())},
        "total": {str(status): count for status, count in sorted(stats.total.items())},
        "errors": stats.errors,
        "latency_p50_ms": p50 * 1000 if p50 is not None else None,
        "latency_p99_ms": p99 * 1000 if p99 is not None else None,
    }


def event_loop_runner() -> Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]]:
    """uvloop's runner when it is installed (it is with uvicorn[standard]), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url")
    parser.add_argument("--body", action="append", required=True, help="JSON with {tag}")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not counted")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds counted")
    parser.add_argument("--total", type=int, help="send exactly this many requests instead")
    args = parser.parse_args()
    print(json.dumps(event_loop_runner()(run(args))), flush=True)


if __name__ == "__main__":
    main()
