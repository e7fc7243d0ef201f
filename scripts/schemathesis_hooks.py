"""Schemathesis hooks for scripts/schemathesis.sh: credentials for the vendor API and the admin API that heal
themselves.

The vendor operations (/v1/...) get the vendor's bearer token; the admin operations (/admin/v1/..., except the
login itself) get the settings session cookie and, on every request, its X-CSRF-Token. The fuzzer legitimately
exercises operations that end those credentials: it logs the session out, resets the logged-in owner's password,
switches the accounting connector off, revokes or rotates the vendor credential. When a request made with the
current session or token is answered 401 (or a vendor request 403: the grant is off), the credential is forgotten
and the next case obtains a fresh one the way a person would: logging in again, or switching accounting back on
and issuing a new credential from the admin API. Otherwise every later case would only ever see 401.

Configuration comes from the environment scripts/schemathesis.sh sets: SG_BASE, SG_FIRM, SG_EMAIL, SG_PASSWORD,
SG_CLIENT_ID, SG_CLIENT_SECRET.
"""

import atexit
import os
import sys
import threading
import time

import requests
import schemathesis

BASE = os.environ["SG_BASE"].rstrip("/")
FIRM = os.environ["SG_FIRM"]
EMAIL = os.environ["SG_EMAIL"]
COOKIE = "sg_session"
CONNECTOR = "accounting"
TIMEOUT = 30


class Credentials:
    """The current session and token, replaced when the gateway stops accepting them."""

    def __init__(self):
        self.lock = threading.RLock()
        self.password = os.environ["SG_PASSWORD"]
        self.client_id = os.environ["SG_CLIENT_ID"]
        self.client_secret = os.environ["SG_CLIENT_SECRET"]
        self.cookie = None
        self.csrf = None
        self.token = None
        self.counts = {"logins": 0, "tokens": 0, "credentials issued": 0}

    def session(self):
        with self.lock:
            if self.cookie is None:
                # A reset of this login's password may be on its way back from another worker: try a few times,
                # reading the password afresh (after_call sets it without taking the lock).
                for _ in range(10):
                    response = requests.post(
                        f"{BASE}/admin/v1/session",
                        json={"firm": FIRM, "email": EMAIL, "password": self.password},
                        timeout=TIMEOUT,
                    )
                    if response.status_code == 200 and COOKIE in response.cookies:
                        break
                    time.sleep(0.2)
                else:
                    raise RuntimeError(f"settings login failed: {response.status_code} {response.text}")
                self.cookie = response.cookies[COOKIE]
                self.csrf = response.json()["csrf_token"]
                self.counts["logins"] += 1
            return self.cookie, self.csrf

    def admin(self, method, path):
        """An admin request with the session, logging in again once if the session has ended."""
        for _ in range(2):
            cookie, csrf = self.session()
            response = requests.request(
                method,
                f"{BASE}{path}",
                cookies={COOKIE: cookie},
                headers={"X-CSRF-Token": csrf},
                timeout=TIMEOUT,
            )
            if response.status_code != 401:
                break
            self.forget(cookie, None)
        return response

    def _exchange(self):
        return requests.post(
            f"{BASE}/oauth/token",
            auth=(self.client_id, self.client_secret),
            data={"grant_type": "client_credentials"},
            timeout=TIMEOUT,
        )

    def vendor_token(self):
        with self.lock:
            if self.token is None:
                response = self._exchange()
                if response.status_code != 200:
                    # The credential was revoked or the connector switched off: do what the firm's admin would.
                    enabled = self.admin("POST", f"/admin/v1/connectors/{CONNECTOR}/enable")
                    if enabled.status_code not in (200, 409):
                        raise RuntimeError(f"cannot switch {CONNECTOR} on: {enabled.status_code} {enabled.text}")
                    issued = self.admin("POST", f"/admin/v1/connectors/{CONNECTOR}/credentials")
                    if issued.status_code != 201:
                        raise RuntimeError(f"cannot issue a credential: {issued.status_code} {issued.text}")
                    self.client_id = issued.json()["client_id"]
                    self.client_secret = issued.json()["client_secret"]
                    self.counts["credentials issued"] += 1
                    response = self._exchange()
                if response.status_code != 200:
                    raise RuntimeError(f"token request failed: {response.status_code} {response.text}")
                self.token = response.json()["access_token"]
                self.counts["tokens"] += 1
            return self.token

    def forget(self, sent_cookie, sent_token):
        with self.lock:
            if sent_cookie is not None and sent_cookie == self.cookie:
                self.cookie = None
                self.csrf = None
            if sent_token is not None and sent_token == self.token:
                self.token = None


CREDENTIALS = Credentials()


@atexit.register
def _report():
    counts = ", ".join(f"{n} {what}" for what, n in CREDENTIALS.counts.items())
    print(f"schemathesis_hooks: credentials obtained during the run: {counts}", file=sys.stderr)


def is_vendor(path):
    return path.startswith("/v1/")


def is_admin(path):
    return path.startswith("/admin/v1/") and path != "/admin/v1/session"


@schemathesis.auth(refresh_interval=None)
class GatewayAuth:
    """The bearer token for vendor operations; the session cookie and CSRF header for admin operations."""

    def get(self, case, context):
        path = context.operation.path
        if is_vendor(path):
            return {"token": CREDENTIALS.vendor_token()}
        if is_admin(path) or (path == "/admin/v1/session" and context.operation.method.upper() == "DELETE"):
            cookie, csrf = CREDENTIALS.session()
            return {"cookie": cookie, "csrf": csrf}
        return None

    def set(self, case, data, context):
        if "token" in data:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data['token']}"}
        else:
            case.cookies = {**(case.cookies or {}), COOKIE: data["cookie"]}
            case.headers = {**(case.headers or {}), "X-CSRF-Token": data["csrf"]}


def _sent_credentials(response):
    headers = response.request.headers
    token = None
    authorization = headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        token = authorization[len("Bearer ") :]
    cookie = None
    for pair in headers.get("Cookie", "").split(";"):
        name, _, value = pair.strip().partition("=")
        if name == COOKIE:
            cookie = value
    return cookie, token


@schemathesis.hook
def after_call(context, case, response):
    path = case.operation.path
    cookie, token = _sent_credentials(response)
    if response.status_code == 401 or (is_vendor(path) and response.status_code == 403):
        CREDENTIALS.forget(cookie, token)
    # The owner's own password was reset: the response is the only place the new one appears.
    if path == "/admin/v1/users/{id}/reset-password" and response.status_code == 200:
        body = response.json()
        if body.get("user", {}).get("email") == EMAIL:
            CREDENTIALS.password = body["password"]
            CREDENTIALS.forget(cookie, None)
    # Logged out: the session is gone.
    if path == "/admin/v1/session" and case.method.upper() == "DELETE" and response.status_code == 204:
        CREDENTIALS.forget(cookie, None)
