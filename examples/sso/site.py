#!/usr/bin/env python3
"""A stand-in for a site owner's backend: serves one page with the image-chat widget and signs
the "logged-in" user for it (Secure SSO). Python standard library only.

    python3 examples/sso/site.py            # http://localhost:3000/?user=ada
    IMAGE_CHAT=http://localhost:8080 IMAGE_CHAT_SECRET=... python3 examples/sso/site.py

The signature names the tenant and the server's audience (its public host, here
"localhost:8080"; IMAGE_CHAT_AUDIENCE overrides it), so it is good for that server and tenant
only.

?user=ada signs Ada, ?user=mod signs a moderator, ?user=reader a read-only user, no ?user
leaves the visitor anonymous (read-only on this tenant).
"""

import base64
import hashlib
import hmac
import html
import json
import os
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

SECRET = os.environ.get(
    "IMAGE_CHAT_SECRET", "example-only-secret-do-not-use-in-production-0123456789"
)
CHAT = os.environ.get("IMAGE_CHAT", "http://localhost:8080")
TENANT = "sso-example"
# The server's public host as the widget reaches it (what the server checks, see tenants.toml).
AUDIENCE = os.environ.get("IMAGE_CHAT_AUDIENCE", urlparse(CHAT).netloc)

USERS = {
    "ada": {"id": "u-1", "name": "Ada Lovelace"},
    "grace": {"id": "u-2", "name": "Grace Hopper", "avatar": "https://example.com/g.png"},
    "mod": {"id": "u-3", "name": "Moderator", "isModerator": True},
    "reader": {"id": "u-4", "name": "Reader", "readOnly": True},
}


def image_chat_auth(secret: str, tenant: str, audience: str, user: dict) -> dict:
    """What your backend does for each page view: sign the logged-in user for one tenant on one
    image-chat server."""
    user_data = base64.b64encode(json.dumps(user).encode()).decode()
    timestamp = int(time.time() * 1000)
    message = f"{tenant}\n{audience}\n{timestamp}\n{user_data}"
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256)
    return {"type": "sso", "userData": user_data, "timestamp": timestamp,
            "hash": digest.hexdigest()}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>image-chat SSO example</title></head>
<body>
  <p>Signed in as: <strong>{who}</strong> &middot;
     <a href="?user=ada">Ada</a> <a href="?user=grace">Grace</a>
     <a href="?user=mod">Moderator</a> <a href="?user=reader">read-only user</a>
     <a href="?">anonymous</a></p>
  <img src="{chat}/sample.svg" width="600" height="375" alt="Sample"
       data-image-chat="sso-example-image" {auth_attr}>
  <script src="{chat}/embed.js" data-tenant="{tenant}" data-server="{chat}" defer></script>
</body></html>
"""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        query = parse_qs(urlparse(self.path).query)
        key = query.get("user", [""])[0]
        user = USERS.get(key)
        auth_attr = ""
        if user:
            # The attribute value is JSON; html.escape keeps it a single, inert attribute.
            auth = json.dumps(image_chat_auth(SECRET, TENANT, AUDIENCE, user))
            auth_attr = f'data-auth="{html.escape(auth, quote=True)}"'
        body = PAGE.format(
            who=html.escape(user["name"]) if user else "nobody (anonymous)",
            chat=html.escape(CHAT, quote=True),
            tenant=TENANT,
            auth_attr=auth_attr,
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    print("SSO example page on http://localhost:3000/?user=ada")
    HTTPServer(("127.0.0.1", 3000), Handler).serve_forever()
