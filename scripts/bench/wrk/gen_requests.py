"""Writes pre-signed webhook deliveries for scripts/bench/wrk/ingest.lua.

usage: gen_requests.py SCHEME SECRET COUNT BODY_FILE OUT_FILE

Each line holds one delivery's headers ("name: value" pairs separated by tabs) with a fresh
delivery id; signatures are computed here with the standard library, over the exact body.
"""

import base64
import hashlib
import hmac
import sys
import time


def main() -> None:
    scheme, secret, count, body_file, out_file = sys.argv[1:6]
    body = open(body_file, "rb").read()
    now = int(time.time())
    with open(out_file, "w") as out:
        if scheme == "github":
            signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            for n in range(int(count)):
                out.write(
                    f"X-Hub-Signature-256: sha256={signature}\tX-GitHub-Event: push\t"
                    f"X-GitHub-Delivery: wrk-{now}-{n}\n"
                )
        elif scheme == "standard_webhooks":
            key = base64.b64decode(secret.removeprefix("whsec_"))
            for n in range(int(count)):
                message_id = f"msg_wrk_{now}_{n}"
                signed = f"{message_id}.{now}.".encode() + body
                digest = hmac.new(key, signed, hashlib.sha256).digest()
                signature = base64.b64encode(digest).decode()
                out.write(
                    f"webhook-id: {message_id}\twebhook-timestamp: {now}\t"
                    f"webhook-signature: v1,{signature}\n"
                )
        else:
            sys.exit(f"unknown scheme {scheme}")


if __name__ == "__main__":
    main()
