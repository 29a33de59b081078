"""A stand-in for Ollama's HTTP API, run as its own process by the fault tests: the model
backend is not what they are about, but it must be a real server they can stop and start.

    python -m tests.faults.fake_ollama --port 11435 --delay 0.3

`/api/tags` lists `mistral:latest`; `/api/chat` streams NDJSON like Ollama, answering with the
first knowledge-base answer in the system prompt, after `--delay` seconds.
"""

import argparse
import contextlib
import json
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    delay = 0.0

    def log_message(self, format: str, *args: object) -> None:  # keep the test output quiet
        return

    def _json(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/api/tags":
            self._json(200, {"models": [{"name": "mistral:latest", "model": "mistral:latest"}]})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        # A worker killed mid-answer breaks the pipe: that is what the fault tests do.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._chat()

    def _chat(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/api/chat":
            self._json(404, {"error": "not found"})
            return
        system = body["messages"][0]["content"]
        match = re.search(r"^A: (.+)$", system, flags=re.MULTILINE)
        answer = match.group(1) if match else "I do not have that information."
        time.sleep(self.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        words = answer.split(" ")
        for i, word in enumerate(words):
            chunk = {"model": "mistral", "message": {"role": "assistant", "content": word + " "},
                     "done": False}  # fmt: skip
            self.wfile.write(json.dumps(chunk).encode() + b"\n")
            if i % 8 == 0:
                self.wfile.flush()
        done = {"model": "mistral", "message": {"role": "assistant", "content": ""}, "done": True,
                "eval_count": len(words)}  # fmt: skip
        self.wfile.write(json.dumps(done).encode() + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    Handler.delay = args.delay
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
