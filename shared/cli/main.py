"""The `support-assistant` command line (also `python -m shared.cli`).

support-assistant ask "How long does shipping take?"   # prints the answer, sources, timings
support-assistant ask --async "..."                    # prints the question id
support-assistant status ID | history [-n N] [--search TEXT] | knowledge reload
support-assistant eval DATASET_DIR                     # retrieval figures (progress bars)
support-assistant run | api | worker | beat            # the processes of `make run`
"""

import argparse
import os
import sys
import time
from typing import Any

import httpx

from shared.cli import calibrate
from shared.cli.launcher import check_flower_access, commands
from shared.cli.launcher import run as run_everything
from shared.core.config import get_settings
from shared.knowledge import eval as knowledge_eval


def _client(args: argparse.Namespace) -> httpx.Client:
    settings = get_settings()
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    base = args.url or f"http://{host}:{settings.api_port}{settings.api_prefix}"
    key = args.api_key or (settings.api_key_list[0] if settings.api_key_list else None)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=base.rstrip("/"), headers=headers, timeout=args.timeout)


def _fail(response: httpx.Response) -> int:
    try:
        error = response.json()["error"]
        print(f"error {response.status_code} {error['code']}: {error['message']}", file=sys.stderr)
    except (ValueError, KeyError, TypeError):
        print(f"error {response.status_code}: {response.text[:300]}", file=sys.stderr)
    return 1


def _print_answer(record: dict[str, Any], *, elapsed: float | None = None) -> None:
    print(record.get("answer") or "")
    print()
    if record.get("action") == "handoff":
        print("-> handed off to a human agent (the knowledge base does not cover this)")
    sources = record.get("sources") or []
    if sources:
        print("Sources:")
        for source in sources:
            print(f"  - {source['id']}  ({source['question']}, score {source['score']:.3f})")
    details = [
        f"provider {record.get('provider')}/{record.get('model')}",
        f"confidence {record.get('confidence')}",
        f"processing {record.get('processing_time')} ms",
    ]
    if elapsed is not None:
        details.append(f"total {elapsed * 1000:.0f} ms")
    print("  ".join(details))


def cmd_ask(args: argparse.Namespace) -> int:
    body = {"question": " ".join(args.question), "context_method": args.context}
    params = {"wait": 0} if args.async_ else {"wait": args.wait}
    started = time.perf_counter()
    with _client(args) as client:
        response = client.post("/ask", json=body, params=params)
        if response.status_code >= 400:
            return _fail(response)
        record = response.json()
        if args.async_:
            print(record["question_id"])
            return 0
        while response.status_code == 202:  # the wait ran out: keep waiting on the record
            response = client.get(f"/questions/{record['question_id']}", params={"wait": 30})
            record = response.json()
            if record["status"] in ("completed", "failed"):
                break
    if record.get("status") == "failed":
        error = record.get("error") or {}
        print(f"failed: {error.get('code')}: {error.get('message')}", file=sys.stderr)
        return 1
    _print_answer(record, elapsed=time.perf_counter() - started)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        response = client.get(f"/questions/{args.id}", params={"wait": args.wait})
    if response.status_code >= 400:
        return _fail(response)
    record = response.json()
    print(f"{record['question_id']}  {record['status']}  attempts {record['attempts']}")
    print(f"Q: {record['question']}")
    if record["status"] == "completed":
        _print_answer(record)
    elif record.get("error"):
        print(f"error {record['error']['code']}: {record['error']['message']}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"n": args.n}
    if args.search:
        params["search"] = args.search
    with _client(args) as client:
        response = client.get("/history", params=params)
    if response.status_code >= 400:
        return _fail(response)
    body = response.json()
    for entry in body["entries"]:
        answer = " ".join(entry["answer"].split())
        print(f"{entry['timestamp'][:19]}  {entry['id'][:8]}  Q: {entry['question']}")
        print(f"    A: {answer[:150]}{'…' if len(answer) > 150 else ''}")
    print(f"({body['count']} of {body['total']})")
    return 0


def cmd_knowledge(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.action == "reload":
            response = client.post("/knowledge/reload")
        else:
            response = client.get("/knowledge")
    if response.status_code >= 400:
        return _fail(response)
    info = response.json()
    print(f"knowledge base {info['version']}: {info['entries']} entries from {info['path']}")
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.command == "flower":
        check_flower_access(settings)
    command = commands(settings)[args.command]
    os.execvp(command[0], command)  # replaces this process, signals and all
    return 0  # pragma: no cover


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="support-assistant",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="API base URL (default: from API_HOST, API_PORT, API_PREFIX)")
    parser.add_argument("--api-key", help="API key (default: the first of API_KEYS)")
    parser.add_argument("--timeout", type=float, default=150.0, help="HTTP timeout in seconds")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="ask a question and print the answer")
    ask.add_argument("question", nargs="+")
    ask.add_argument("--async", dest="async_", action="store_true", help="print the id at once")
    ask.add_argument("--wait", type=float, default=60, help="seconds the API waits (default 60)")
    ask.add_argument("--context", choices=["hybrid", "keyword", "all"], default="hybrid")
    ask.set_defaults(handler=cmd_ask)

    status = sub.add_parser("status", help="a question's status and answer")
    status.add_argument("id")
    status.add_argument("--wait", type=float, default=0, help="wait up to N s for the answer")
    status.set_defaults(handler=cmd_status)

    history = sub.add_parser("history", help="answered questions, newest first")
    history.add_argument("-n", type=int, default=10)
    history.add_argument("--search")
    history.set_defaults(handler=cmd_history)

    knowledge = sub.add_parser("knowledge", help="the knowledge base (show, reload)")
    knowledge.add_argument("action", choices=["show", "reload"], nargs="?", default="show")
    knowledge.set_defaults(handler=cmd_knowledge)

    sub.add_parser("eval", help="retrieval figures on a labelled FAQ set (eval -h)")
    sub.add_parser("calibrate", help="fit the confidence curve for this base (calibrate -h)")

    for name, text in (("api", "the HTTP API"), ("worker", "a Celery worker"),
                       ("beat", "the reconciler's scheduler"), ("flower", "Flower")):  # fmt: skip
        process = sub.add_parser(name, help=f"run {text} in the foreground")
        process.set_defaults(handler=cmd_process)
    run = sub.add_parser("run", help="everything, as `make run`")
    run.set_defaults(handler=lambda _: run_everything())
    return parser


# Commands with parsers of their own: everything after the name is theirs.
DELEGATED = {"eval": knowledge_eval.main, "calibrate": calibrate.main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]](argv[1:])
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except httpx.TransportError as exc:
        print(f"cannot reach the API ({exc}); is it running? (`make run`)", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
