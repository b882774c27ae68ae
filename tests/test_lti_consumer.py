"""The LTI consumer the integration suite posts grades to (lti_consumer.py)
must refuse what edX would refuse, or the suite proves nothing: requests are
signed here with oauthlib's client, then tampered with."""

import base64
import hashlib
import time
import xml.etree.ElementTree as ET

import pytest
import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, Client

from lti_consumer import NS, LTIConsumer

KEY = "key with spaces&=+"
SECRET = "s3cr&t=/+%"
COURSE = "BerkeleyX+Data8.1x+3T2022"
BLOCK = "6333e19d6b4d46f88df671ba50f616d8"


def envelope(sourced_id, score, message_id="m1"):
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<imsx_POXEnvelopeRequest xmlns="{NS}">
  <imsx_POXHeader><imsx_POXRequestHeaderInfo>
    <imsx_version>V1.0</imsx_version><imsx_messageIdentifier>{message_id}</imsx_messageIdentifier>
  </imsx_POXRequestHeaderInfo></imsx_POXHeader>
  <imsx_POXBody><replaceResultRequest><resultRecord>
    <sourcedGUID><sourcedId>{sourced_id}</sourcedId></sourcedGUID>
    <result><resultScore><language>en</language><textString>{score}</textString></resultScore></result>
  </resultRecord></replaceResultRequest></imsx_POXBody>
</imsx_POXEnvelopeRequest>
"""


def sign(url, body, key=KEY, secret=SECRET, **client_args):
    client = Client(key, client_secret=secret, signature_method=SIGNATURE_HMAC_SHA1, **client_args)
    _, headers, _ = client.sign(url, http_method="POST", body=body, headers={"Content-Type": "application/xml"})
    return headers


def post(url, body, headers, timeout=10):
    resp = requests.post(url, data=body.encode(), headers=headers, timeout=timeout)
    return resp.status_code, code_major(resp.text), resp.text


def code_major(text):
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    found = root.find(f".//{{{NS}}}imsx_codeMajor")
    return None if found is None else found.text


@pytest.fixture
def consumer():
    c = LTIConsumer(key=KEY, secret=SECRET, users={"a1b2c3", "u2"}).start()
    yield c
    c.stop()


@pytest.fixture
def target(consumer):
    """(url, sourcedId) of user a1b2c3 in the test block."""
    return consumer.outcome_url(COURSE, BLOCK), consumer.sourced_id(COURSE, BLOCK, "a1b2c3")


def test_accepts_a_correctly_signed_request(consumer, target):
    url, sid = target
    body = envelope(sid, "0.85")
    headers = sign(url, body)
    assert "oauth_body_hash" in headers["Authorization"]
    status, major, text = post(url, body, headers)
    assert (status, major) == (200, "success"), text
    [got] = consumer.received
    assert (got.sourced_id, got.user, got.course_id, got.block_id, got.score, got.score_text) == \
        (sid, "a1b2c3", COURSE, BLOCK, 0.85, "0.85")
    assert got.consumer_key == KEY
    assert consumer.scores() == {sid: 0.85}


def test_refuses_a_wrong_secret(consumer, target):
    url, sid = target
    body = envelope(sid, "1")
    status, major, text = post(url, body, sign(url, body, secret="not the secret"))
    assert (status, major) == (200, "failure"), text
    assert "signature mismatch" in text
    assert consumer.received == []


def test_refuses_a_wrong_body_hash(consumer, target):
    url, sid = target
    signed_body = envelope(sid, "0.1")
    headers = sign(url, signed_body)
    status, major, text = post(url, envelope(sid, "1.0"), headers)
    assert (status, major) == (200, "failure"), text
    assert "body hash" in text
    assert consumer.received == []


class WrongBodyHashClient(Client):
    """Signs a body hash that is not the body's: the signature itself is
    valid, so only the body hash check can catch it."""

    def get_oauth_params(self, request):
        wrong = base64.b64encode(hashlib.sha1(b"another body").digest()).decode()
        return [(k, wrong if k == "oauth_body_hash" else v) for k, v in super().get_oauth_params(request)]


def test_refuses_a_signed_but_wrong_or_missing_body_hash(consumer, target):
    url, sid = target
    body = envelope(sid, "1")
    client = WrongBodyHashClient(KEY, client_secret=SECRET, signature_method=SIGNATURE_HMAC_SHA1)
    _, headers, _ = client.sign(url, http_method="POST", body=body, headers={"Content-Type": "application/xml"})
    status, major, text = post(url, body, headers)
    assert (status, major) == (200, "failure"), text
    assert "body hash" in text
    # No body hash at all: oauthlib's client omits it without a body.
    headers = sign(url, None)
    assert "oauth_body_hash" not in headers["Authorization"]
    status, major, text = post(url, body, headers)
    assert (status, major) == (200, "failure"), text
    assert "body hash" in text
    assert consumer.received == []


def test_refuses_a_signature_for_another_url(consumer, target):
    url, sid = target
    body = envelope(sid, "1")
    other = consumer.outcome_url(COURSE, "another-block")
    status, major, text = post(url, body, sign(other, body))
    assert (status, major) == (200, "failure"), text
    assert consumer.received == []


def test_refuses_an_unknown_key_a_reused_nonce_and_an_old_timestamp(consumer, target):
    url, sid = target
    body = envelope(sid, "1")
    assert post(url, body, sign(url, body, key="someone else"))[1] == "failure"
    headers = sign(url, body)
    assert post(url, body, headers)[1] == "success"
    status, major, text = post(url, body, headers)
    assert major == "failure" and "nonce already used" in text
    old = str(int(time.time()) - 3600)
    assert post(url, body, sign(url, body, timestamp=old))[1] == "failure"
    assert len(consumer.received) == 1


def test_refuses_unknown_users_foreign_sourced_ids_and_bad_scores(consumer, target):
    url, sid = target
    for body, why in [
        (envelope(consumer.sourced_id(COURSE, BLOCK, "nobody"), "1"), "User not found"),
        (envelope(consumer.sourced_id(COURSE, "another-block", "a1b2c3"), "1"), "does not belong"),
        (envelope(sid, "1.5"), "not in [0, 1]"),
        (envelope(sid, "-0.1"), "not in [0, 1]"),
        (envelope(sid, "NaN"), "not in [0, 1]"),
        (envelope(sid, "1").replace(NS, "urn:wrong"), "parsing error"),
        ("<not xml", "parsing error"),
    ]:
        status, major, text = post(url, body, sign(url, body))
        assert (status, major) == (200, "failure"), text
        assert why in text
    assert consumer.received == []


def test_injected_faults(consumer, target):
    url, sid = target
    body = envelope(sid, "0.5")

    consumer.fail_next(2, status=503)
    assert post(url, body, sign(url, body))[0] == 503
    assert post(url, body, sign(url, body))[0] == 503
    assert post(url, body, sign(url, body))[1] == "success"

    consumer.drop_next(1)
    with pytest.raises(requests.ConnectionError):
        post(url, body, sign(url, body))
    assert post(url, body, sign(url, body))[1] == "success"

    consumer.hang_next(1, seconds=5)
    with pytest.raises(requests.Timeout):
        post(url, body, sign(url, body), timeout=0.5)
    assert post(url, body, sign(url, body))[1] == "success"

    consumer.fail_sourced_id(sid, "Gradebook is closed.")
    status, major, text = post(url, body, sign(url, body))
    assert (status, major) == (200, "failure") and "Gradebook is closed." in text
    other = consumer.sourced_id(COURSE, BLOCK, "u2")
    assert post(url, envelope(other, "1"), sign(url, envelope(other, "1")))[1] == "success"
    consumer.clear_faults()
    assert post(url, body, sign(url, body))[1] == "success"

    assert len(consumer.received) == 5
    assert [consumer.count(k) for k in ("status", "dropped", "hung", "accepted")] == [2, 1, 1, 5]
    consumer.wait_for(lambda c: len(c.received) == 5, timeout=1)


def test_delayed_requests_are_applied_late_in_order_of_application(consumer, target):
    """delay_next holds valid requests, then applies them: a client that gave
    up meanwhile never hears the answer, a request answered meanwhile is
    applied first, and what edX holds is the last applied."""
    url, sid = target
    consumer.delay_next(1, seconds=3)

    # An invalid request is answered at once and does not use up the delay.
    wrong = envelope(sid, "0.3")
    status, major, text = post(url, wrong, sign(url, wrong, secret="not the secret"), timeout=1)
    assert (status, major) == (200, "failure"), text

    late = envelope(sid, "0.2", message_id="late")
    with pytest.raises(requests.Timeout):
        post(url, late, sign(url, late), timeout=0.5)  # the client gives up; edX has not applied it yet
    assert [e.kind for e in consumer.valid(sid)] == ["delayed"]
    assert consumer.received == [] and not consumer.settled()

    first = envelope(sid, "0.9", message_id="first")
    assert post(url, first, sign(url, first))[1] == "success"  # not held: answered (and applied) at once
    assert consumer.scores() == {sid: 0.9}

    consumer.wait_for(lambda c: c.settled(), timeout=10)
    assert [o.message_id for o in consumer.received] == ["first", "late"]
    assert consumer.scores() == {sid: 0.2}, "the late request was applied last: edX holds its score"
    held, answered = consumer.valid(sid)  # in order of arrival
    assert (held.kind, held.score, held.delay, held.outcome.message_id) == ("accepted", 0.2, 3, "late")
    assert held.ended - held.started >= 3
    assert held.started < answered.started < answered.ended < held.ended == held.outcome.at
    assert [consumer.count(k) for k in ("rejected", "accepted", "delayed")] == [1, 2, 0]

    # Once the n delays are used up, requests are answered at once again;
    # a client that waits long enough hears a held request's answer.
    consumer.delay_next(1, seconds=0.5)
    again = envelope(sid, "0.7", message_id="again")
    started = time.monotonic()
    assert post(url, again, sign(url, again), timeout=10)[1] == "success"
    assert time.monotonic() - started >= 0.5
    assert post(url, first, sign(url, first), timeout=1)[1] == "success"
    assert consumer.scores() == {sid: 0.9} and len(consumer.received) == 4


def test_stop_lets_held_requests_go_unapplied():
    c = LTIConsumer(key=KEY, secret=SECRET).start()
    url, sid = c.outcome_url(COURSE, BLOCK), c.sourced_id(COURSE, BLOCK, "a1b2c3")
    c.delay_next(1, seconds=60)
    body = envelope(sid, "1")
    with pytest.raises(requests.Timeout):
        post(url, body, sign(url, body), timeout=0.5)
    started = time.monotonic()
    c.stop()
    assert time.monotonic() - started < 5, "stop waited for a held request"
    c.wait_for(lambda c: c.settled(), timeout=5)
    assert [e.kind for e in c.events] == ["abandoned"] and c.events[0].ended is not None
    assert c.received == [] and c.scores() == {}
