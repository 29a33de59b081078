"""A stand-in for Ollama that streams at a fixed rate and remembers when it sent each token, so
bench/pipeline.py can compare what reaches the client with what the model sent (same clock).

    python bench/fake_model.py --port 11435 --rate 50

`/api/tags` lists `mistral:latest`; `/api/chat` streams NDJSON like Ollama, one word (with the
space after it) per chunk, every 1/rate s: the answer is the retrieved entry's text from the
system prompt, which the answer engine's checks accept. `GET /bench/last` returns the words of
the latest answer, the epoch time each was written to the socket, and when the final `done` line
was.
"""

import argparse
import json
import re
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faults import fake_ollama

MODEL = "mistral:latest"


class Handler(fake_ollama.Handler):
    """The fault tests' stand-in, paced per token and with a record of when each went out."""

    interval = 0.02
    lock = threading.Lock()
    last: ClassVar[dict[str, Any]] = {"words": [], "sent": [], "finished": 0.0}

    def do_GET(self) -> None:
        if self.path == "/bench/last":
            with self.lock:
                self._json(200, dict(self.last))
        else:
            super().do_GET()

    def _chat(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path != "/api/chat":
            self._json(404, {"error": "not found"})
            return
        system = body["messages"][0]["content"]
        # The one passage comes last in the system prompt: "[id]\nQ: title\nA: text".
        answer = system.rpartition("\nA: ")[2].strip() or "I do not have that information."
        words = re.findall(r"\S+\s*", answer)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        sent: list[float] = []
        for word in words:
            chunk = {
                "model": MODEL,
                "message": {"role": "assistant", "content": word},
                "done": False,
            }
            self.wfile.write(json.dumps(chunk).encode() + b"\n")
            self.wfile.flush()
            sent.append(time.time())
            time.sleep(self.interval)
        done = {
            "model": MODEL,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "eval_count": len(words),
        }
        self.wfile.write(json.dumps(done).encode() + b"\n")
        with self.lock:
            Handler.last = {"words": words, "sent": sent, "finished": time.time()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second")
    args = parser.parse_args()
    Handler.interval = 1 / args.rate
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
