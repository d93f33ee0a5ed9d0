#!/usr/bin/env python3
"""Print the webhooks Interlock sends, after checking their signatures.

    .venv/bin/python scripts/receive_webhooks.py --port 9000 --secret whsec_...

Answers 200 to every correctly signed request and 401 to any other; ``--fail N``
answers 500 to the first N requests, to watch Interlock retry.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", required=True, help="the endpoint's whsec_ secret")
    parser.add_argument("--fail", type=int, default=0, help="answer 500 to the first N")
    options = parser.parse_args()
    verifier = Webhook(options.secret)
    failures_left = [options.fail]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                payload = verifier.verify(body, headers)
            except WebhookVerificationError as error:
                print(f"REJECTED {headers.get('webhook-id')}: {error}", flush=True)
                self._answer(401)
                return
            if failures_left[0] > 0:
                failures_left[0] -= 1
                print(f"failing on purpose: {headers['webhook-id']}", flush=True)
                self._answer(500)
                return
            incident = payload.get("data", {}).get("incident", {})
            print(f"{headers['webhook-id']} {payload['type']} "
                  f"{incident.get('reference', '')} v{incident.get('version', '')}: "
                  f"{json.dumps(payload.get('data', {}).get('changes', {}))}", flush=True)
            self._answer(200)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    print(f"listening on http://127.0.0.1:{options.port}/", flush=True)
    ThreadingHTTPServer(("127.0.0.1", options.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
