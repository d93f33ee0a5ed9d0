#!/usr/bin/env python3
"""Print the webhooks Interlock sends, after checking their signatures.

    .venv/bin/python scripts/receive_webhooks.py --port 9000 --secret whsec_...

Answers 200 to every correctly signed request and 401 to any other; ``--fail N``
answers 500 to the first N requests, to watch Interlock retry.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

_printing = threading.Lock()


def say(line: str) -> None:
    """One whole line at a time: requests are handled on several threads, and print()
    writes the text and its newline separately, so lines could interleave under load."""
    with _printing:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", required=True, help="the endpoint's whsec_ secret")
    parser.add_argument("--fail", type=int, default=0, help="answer 500 to the first N")
    options = parser.parse_args()
    verifier = Webhook(options.secret)
    failures_left = [options.fail]
    counting = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                payload = verifier.verify(body, headers)
            except WebhookVerificationError as error:
                say(f"REJECTED {headers.get('webhook-id')}: {error}")
                self._answer(401)
                return
            with counting:
                fail_this = failures_left[0] > 0
                failures_left[0] -= fail_this
            if fail_this:
                say(f"failing on purpose: {headers['webhook-id']}")
                self._answer(500)
                return
            incident = payload.get("data", {}).get("incident", {})
            say(f"{headers['webhook-id']} {payload['type']} "
                f"{incident.get('reference', '')} v{incident.get('version', '')}: "
                f"{json.dumps(payload.get('data', {}).get('changes', {}))}")
            self._answer(200)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    ThreadingHTTPServer.request_queue_size = 128  # not 5: a burst of retries must not reset
    server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    say(f"listening on http://127.0.0.1:{options.port}/")  # once it can take requests
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
