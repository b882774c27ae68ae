"""A stand-in for edX's LTI 1.1 outcome service (the lti_consumer XBlock's
outcome_service_handler), on loopback, for the integration suite.

Every request is checked with oauthlib, an OAuth 1.0a implementation
independent of the service's Go signer: the HMAC-SHA1 signature over the URL
the request was sent to, the consumer key, the timestamp window, that no
nonce is used twice, and the oauth_body_hash of the exact body. The
replaceResultRequest is then read by namespace, its sourcedId checked
against the block the URL names, and its score against [0, 1]. Answers are
edX's: HTTP 200 with imsx_codeMajor "success", or "failure" with a
description (bad signature, unknown user, ...).

Faults can be injected: HTTP errors, answers that never come, dropped
connections, "failure" answers for given sourcedIds, and valid requests that
are held a while before being applied and answered (a slow edX: the answer
reaches a client that may have given up already). Outcomes are recorded in
the order they are applied, so the last of `received` for a sourcedId, and
`scores()`, are what edX holds.

    consumer = LTIConsumer(key="k", secret="s").start()
    # EDX_URL=consumer.url, LTI_CONSUMER_KEY=k, LTI_CONSUMER_SECRET=s
    consumer.fail_next(2, status=503)
    consumer.delay_next(1, seconds=3)
    ...
    consumer.wait_for(lambda c: len(c.received) == 1)
    consumer.stop()

Run as a program it serves until killed, printing "ready URL" and then one
JSON line per request (used by the Go tests of the lti package):

    python tests/lti_consumer.py --key K --secret S
"""

import argparse
import base64
import dataclasses
import hashlib
import http.server
import json
import math
import re
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint
from oauthlib.oauth1.rfc5849 import signature

NS = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"
PATH = re.compile(
    r"^/courses/course-v1:(?P<course>[^/]+)/xblock/block-v1:(?P=course)\+type@lti_consumer\+block@(?P<block>[^/]+)"
    r"/handler_noauth/outcome_service_handler$"
)


@dataclasses.dataclass
class Outcome:
    """One accepted replaceResultRequest, as applied (at: when)."""

    sourced_id: str
    user: str  # the part of the sourcedId after the last ":", as edX reads it
    course_id: str  # from the URL
    block_id: str  # from the URL
    score: float
    score_text: str
    message_id: str
    consumer_key: str
    at: float


@dataclasses.dataclass
class Event:
    """One request, whatever became of it: kind is "accepted", "rejected",
    "status" (an injected HTTP error), "dropped", "hung", or, for a valid
    request held by delay_next, "delayed" until it is applied (then
    "accepted") or the consumer stops first (then "abandoned").

    started is when the request arrived and ended when it was answered (for
    an accepted one: when it was applied, just before its answer is sent),
    both time.time(); ended is None while it is held or hanging. score is
    the score a valid request asks for."""

    kind: str
    detail: str
    sourced_id: str = ""
    outcome: Outcome = None  # when accepted
    score: float = None  # valid requests (accepted, delayed, abandoned)
    started: float = 0.0
    ended: float = None
    delay: float = 0.0  # seconds it was held (delay_next)


class _Validator(RequestValidator):
    """oauthlib's checks, with edX's leniency about key characters: any
    non-empty key is well-formed, and only the configured ones are valid."""

    def __init__(self, consumer):
        super().__init__()
        self.consumer = consumer

    @property
    def enforce_ssl(self):
        return False  # loopback

    @property
    def timestamp_lifetime(self):
        return self.consumer.timestamp_lifetime

    @property
    def dummy_client(self):
        return "dummy-client-key"

    def check_client_key(self, client_key):
        return bool(client_key)

    def validate_client_key(self, client_key, request):
        return client_key in self.consumer.credentials

    def get_client_secret(self, client_key, request):
        return self.consumer.credentials.get(client_key, "dummy-secret")

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request, request_token=None, access_token=None):
        with self.consumer._lock:
            seen = self.consumer._nonces
            if (client_key, nonce) in seen:
                request.validator_log["nonce_reused"] = True
                return False
            seen.add((client_key, nonce))
            return True


class LTIConsumer:
    """The consumer. credentials maps consumer keys to secrets (key and secret
    are a shorthand for one pair). users, if given, are the only user ids
    (the end of a sourcedId) that exist; others get edX's "User not found"."""

    def __init__(self, key="otter-lti-key", secret="otter-lti-secret", credentials=None, users=None,
                 timestamp_lifetime=600):
        self.credentials = dict(credentials) if credentials else {key: secret}
        self.users = set(users) if users is not None else None
        self.timestamp_lifetime = timestamp_lifetime
        self.received = []  # Outcome, one per accepted request
        self.events = []  # Event, one per request
        self._nonces = set()
        self._lock = threading.Condition()
        self._faults = []  # [kind, remaining, arg]
        self._delays = []  # [remaining, seconds], for valid requests only
        self._failing = {}  # sourcedId -> description
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self._endpoint = SignatureOnlyEndpoint(_Validator(self))

    # --- lifecycle -------------------------------------------------------

    def start(self):
        handler = type("Handler", (_Handler,), {"consumer": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="lti-consumer",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops serving at once: requests held by delay_next or hang_next
        are let go unanswered (held ones are "abandoned", never applied)."""
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def host(self):
        """host:port, as it appears in sourcedIds."""
        return "127.0.0.1:%d" % self._server.server_address[1]

    @property
    def url(self):
        """The EDX_URL to give the service."""
        return "http://" + self.host

    def outcome_url(self, course_id, block_id):
        return (f"{self.url}/courses/course-v1:{course_id}/xblock/block-v1:{course_id}+type@lti_consumer"
                f"+block@{block_id}/handler_noauth/outcome_service_handler")

    def sourced_id(self, course_id, block_id, user):
        return f"course-v1%3A{course_id}:{self.host}-{block_id}:{user}"

    # --- faults ----------------------------------------------------------

    def fail_next(self, n, status=503):
        """Answer the next n requests with this HTTP status, unread."""
        with self._lock:
            self._faults.append(["status", n, status])

    def hang_next(self, n, seconds=30.0):
        """Leave the next n requests unanswered for seconds (or until stop),
        then drop them unprocessed: the client sees a timeout."""
        with self._lock:
            self._faults.append(["hang", n, seconds])

    def delay_next(self, n, seconds):
        """Hold each of the next n valid requests (ones that would be
        accepted) for seconds, then apply and answer it: a slow edX that
        applies a grade after the client may have given up. Invalid ones are
        answered at once and do not count. Held requests are recorded as
        "delayed" events on arrival; their outcome joins `received` when it
        is applied, so later requests answered meanwhile come before it."""
        with self._lock:
            self._delays.append([n, seconds])

    def drop_next(self, n):
        """Close the connection of the next n requests without an answer."""
        with self._lock:
            self._faults.append(["drop", n, None])

    def fail_sourced_id(self, sourced_id, description="Grade could not be saved."):
        """Answer codeMajor "failure" for this sourcedId until cleared."""
        with self._lock:
            self._failing[sourced_id] = description

    def clear_faults(self):
        with self._lock:
            self._faults.clear()
            self._delays.clear()
            self._failing.clear()

    def _take_fault(self):
        with self._lock:
            while self._faults:
                fault = self._faults[0]
                if fault[1] <= 0:
                    self._faults.pop(0)
                    continue
                fault[1] -= 1
                return fault[0], fault[2]
        return None, None

    def _take_delay(self):
        with self._lock:
            while self._delays:
                delay = self._delays[0]
                if delay[0] <= 0:
                    self._delays.pop(0)
                    continue
                delay[0] -= 1
                return delay[1]
        return 0.0

    # --- results ---------------------------------------------------------

    def scores(self):
        """The score edX holds per sourcedId: the last applied."""
        with self._lock:
            return {o.sourced_id: o.score for o in self.received}

    def count(self, kind):
        with self._lock:
            return sum(1 for e in self.events if e.kind == kind)

    def valid(self, sourced_id=None):
        """The valid requests (accepted, delayed or abandoned), of one
        sourcedId if given, in order of arrival."""
        with self._lock:
            return [e for e in self.events if e.kind in ("accepted", "delayed", "abandoned")
                    and (sourced_id is None or e.sourced_id == sourced_id)]

    def settled(self):
        """Whether no request is held by delay_next any more."""
        with self._lock:
            return not any(e.kind == "delayed" for e in self.events)

    def wait_for(self, predicate, timeout=60.0):
        """Waits until predicate(self) is true; returns it, or fails."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"LTI consumer: condition not met in {timeout}s; events: {self.events}")
                self._lock.wait(min(left, 0.5))
            return True

    def _record(self, event, outcome=None):
        with self._lock:
            event.outcome = outcome
            if event.kind not in ("delayed", "hung"):
                event.ended = time.time()
            self.events.append(event)
            if outcome:
                self.received.append(outcome)
            self._lock.notify_all()

    def _settle(self, event, outcome=None):
        """A held request's end: applied (with its outcome) or abandoned."""
        with self._lock:
            now = time.time()
            event.ended = now
            if outcome:
                outcome.at = now
                event.kind, event.outcome = "accepted", outcome
                self.received.append(outcome)
            else:
                event.kind = "abandoned"
            self._lock.notify_all()

    # --- the outcome service ---------------------------------------------

    def handle(self, method, host, path, headers, body, started=None):
        """Returns (status, xml answer or None); records the request. A
        request held by delay_next returns once applied; (None, None) if the
        consumer stopped first (no answer is to be sent)."""
        started = time.time() if started is None else started
        route = PATH.match(urllib.parse.urlsplit(path).path)
        if method != "POST" or not route:
            self._record(Event("rejected", f"{method} {path}: no such handler", started=started))
            return 404, None
        course, block = route["course"], route["block"]

        # Signature, key, timestamp, nonce: oauthlib.
        uri = f"http://{host}{path}"
        try:
            valid, request = self._endpoint.validate_request(uri, http_method=method, body=body.decode("utf-8", "replace"),
                                                             headers=headers)
        except ValueError as e:
            valid, request = False, None
            why = str(e)
        else:
            why = self._why(request)
        if not valid:
            self._record(Event("rejected", "OAuth: " + why, started=started))
            return 200, _answer("failure", "OAuth verification error: " + why, "")

        # Body hash: the SHA-1 of the exact bytes received.
        params = dict(signature.collect_parameters(headers=headers, exclude_oauth_signature=False))
        want = base64.b64encode(hashlib.sha1(body).digest()).decode()
        if params.get("oauth_body_hash") != want:
            self._record(Event("rejected", "OAuth body hash mismatch", started=started))
            return 200, _answer("failure", "OAuth verification error: body hash mismatch", "")
        ctype = headers.get("Content-Type", "")
        if ctype.split(";")[0].strip() != "application/xml":
            self._record(Event("rejected", f"Content-Type {ctype!r}", started=started))
            return 200, _answer("failure", f"Content-Type {ctype} is not application/xml", "")

        # The message.
        try:
            root = ET.fromstring(body)
            if root.tag != f"{{{NS}}}imsx_POXEnvelopeRequest":
                raise ValueError(f"root element {root.tag}")
            message_id = _text(root, "imsx_POXHeader/imsx_POXRequestHeaderInfo/imsx_messageIdentifier")
            op = root.find(f"{{{NS}}}imsx_POXBody/*")
            if op is None:
                raise ValueError("empty imsx_POXBody")
            if op.tag != f"{{{NS}}}replaceResultRequest":
                self._record(Event("rejected", f"unsupported {op.tag}", started=started))
                return 200, _answer("unsupported", "Target does not support the requested operation.", message_id)
            sourced_id = _text(op, "resultRecord/sourcedGUID/sourcedId")
            score_text = _text(op, "resultRecord/result/resultScore/textString")
            language = op.find(f"{{{NS}}}resultRecord/{{{NS}}}result/{{{NS}}}resultScore/{{{NS}}}language")
            if language is not None and (language.text or "").strip() not in ("en", "en-US", "en-us"):
                raise ValueError(f"language {language.text!r}")
            score = float(score_text)
        except (ET.ParseError, ValueError, TypeError) as e:
            self._record(Event("rejected", f"request body: {e}", started=started))
            return 200, _answer("failure", f"Request body XML parsing error: {e}", "")

        if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", score_text.strip()) or math.isnan(score) or not 0 <= score <= 1:
            self._record(Event("rejected", f"score {score_text!r}", sourced_id, started=started))
            return 200, _answer("failure", f"Request body XML parsing error: score {score_text} is not in [0, 1]",
                                message_id)
        prefix = f"course-v1%3A{course}:{host}-{block}:"
        if not sourced_id.startswith(prefix):
            self._record(Event("rejected", f"sourcedId {sourced_id!r} is not of block {block}", sourced_id,
                               started=started))
            return 200, _answer("failure", "sourcedId does not belong to this block.", message_id)
        user = sourced_id.rsplit(":", 1)[-1]
        if self.users is not None and user not in self.users:
            self._record(Event("rejected", f"user {user!r} not found", sourced_id, started=started))
            return 200, _answer("failure", "User not found.", message_id)
        with self._lock:
            failing = self._failing.get(sourced_id)
        if failing is not None:
            self._record(Event("rejected", "injected failure: " + failing, sourced_id, started=started))
            return 200, _answer("failure", failing, message_id)

        outcome = Outcome(sourced_id=sourced_id, user=user, course_id=course, block_id=block, score=score,
                          score_text=score_text, message_id=message_id, consumer_key=params["oauth_consumer_key"],
                          at=time.time())
        delay = self._take_delay()
        if delay > 0:
            event = Event("delayed", f"{sourced_id} = {score_text}, held {delay}s", sourced_id, score=score,
                          started=started, delay=delay)
            self._record(event)
            if self._stopping.wait(delay):
                self._settle(event)
                return None, None
            self._settle(event, outcome)
        else:
            self._record(Event("accepted", f"{sourced_id} = {score_text}", sourced_id, score=score, started=started),
                         outcome)
        return 200, _answer("success", f"Score for {sourced_id} is now {score}", message_id)

    def _why(self, request):
        if request is None:
            return "malformed OAuth parameters"
        log = getattr(request, "validator_log", {})
        if log.get("nonce_reused"):
            return "nonce already used"
        if log.get("client") is False:
            return "unknown consumer key"
        if log.get("signature") is False:
            return "signature mismatch"
        return "missing or invalid OAuth parameters (version, timestamp window, nonce)"


def _text(elem, path):
    found = elem.find("/".join(f"{{{NS}}}{p}" for p in path.split("/")))
    if found is None or found.text is None:
        raise ValueError(f"no {path.rsplit('/', 1)[-1]}")
    return found.text.strip()


def _answer(code_major, description, message_ref):
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<imsx_POXEnvelopeResponse xmlns="{NS}">
    <imsx_POXHeader>
        <imsx_POXResponseHeaderInfo>
            <imsx_version>V1.0</imsx_version>
            <imsx_messageIdentifier>{uuid.uuid4().hex}</imsx_messageIdentifier>
            <imsx_statusInfo>
                <imsx_codeMajor>{escape(code_major)}</imsx_codeMajor>
                <imsx_severity>status</imsx_severity>
                <imsx_description>{escape(description)}</imsx_description>
                <imsx_messageRefIdentifier>{escape(message_ref)}</imsx_messageRefIdentifier>
            </imsx_statusInfo>
        </imsx_POXResponseHeaderInfo>
    </imsx_POXHeader>
    <imsx_POXBody>{"<replaceResultResponse/>" if code_major == "success" else ""}</imsx_POXBody>
</imsx_POXEnvelopeResponse>
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    consumer = None  # set per server
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def _serve(self):
        c = self.consumer
        started = time.time()
        kind, arg = c._take_fault()
        if kind == "drop":
            c._record(Event("dropped", f"{self.command} {self.path}", started=started))
            self.close_connection = True
            return
        if kind == "hang":
            event = Event("hung", f"{self.command} {self.path} for {arg}s", started=started)
            c._record(event)
            c._stopping.wait(arg)
            with c._lock:
                event.ended = time.time()
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if kind == "status":
            c._record(Event("status", str(arg), started=started))
            self._send(arg, f"injected {arg}\n".encode(), "text/plain")
            return
        status, answer = c.handle(self.command, self.headers.get("Host", ""), self.path, dict(self.headers.items()), body,
                                  started)
        if status is None:  # held, and the consumer stopped meanwhile
            self.close_connection = True
            return
        if answer is None:
            self._send(status, b"not found\n", "text/plain")
        else:
            self._send(status, answer.encode(), "application/xml; charset=utf-8")

    def _send(self, status, data, ctype):
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client gave up (a held request's, say): edX's answer goes nowhere
            self.close_connection = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--key", required=True)
    ap.add_argument("--secret", required=True)
    args = ap.parse_args()
    consumer = LTIConsumer(key=args.key, secret=args.secret).start()
    print("ready", consumer.url, flush=True)
    seen = 0
    try:
        while True:
            consumer.wait_for(lambda c: len(c.events) > seen, timeout=3600 * 24)
            with consumer._lock:
                new, seen = consumer.events[seen:], len(consumer.events)
            for e in new:
                print(json.dumps(dataclasses.asdict(e)), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.stop()


if __name__ == "__main__":
    main()
