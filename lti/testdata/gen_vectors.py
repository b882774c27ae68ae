"""Writes vectors.json: OAuth 1.0a HMAC-SHA1 signatures with oauth_body_hash,
computed by oauthlib, an implementation independent of the Go signer, for
lti/oauth_test.go and lti/outcomes_test.go to check the signer against.

    python3 -m venv /tmp/vectors-venv
    /tmp/vectors-venv/bin/pip install oauthlib==3.3.1
    /tmp/vectors-venv/bin/python lti/testdata/gen_vectors.py > lti/testdata/vectors.json

oauthlib's Client signs each request with a fixed timestamp and nonce; for
content types other than application/x-www-form-urlencoded it computes
oauth_body_hash itself (base64 of the SHA-1 of the UTF-8 body). The base
string is then rebuilt with oauthlib's signature module from the signed
Authorization header, and checked to give the same signature.
"""

import json
import sys
import urllib.parse

import oauthlib
from oauthlib.oauth1 import Client
from oauthlib.oauth1.rfc5849 import signature

TIMESTAMP = "1700000000"
NONCE = "0123456789abcdef01234567"


def envelope(message_id, sourced_id, score):
    """A replaceResultRequest; the text arguments are already XML-escaped."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<imsx_POXEnvelopeRequest xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">
  <imsx_POXHeader>
    <imsx_POXRequestHeaderInfo>
      <imsx_version>V1.0</imsx_version>
      <imsx_messageIdentifier>{message_id}</imsx_messageIdentifier>
    </imsx_POXRequestHeaderInfo>
  </imsx_POXHeader>
  <imsx_POXBody>
    <replaceResultRequest>
      <resultRecord>
        <sourcedGUID>
          <sourcedId>{sourced_id}</sourcedId>
        </sourcedGUID>
        <result>
          <resultScore>
            <language>en</language>
            <textString>{score}</textString>
          </resultScore>
        </result>
      </resultRecord>
    </replaceResultRequest>
  </imsx_POXBody>
</imsx_POXEnvelopeRequest>
"""


EDX_PATH = "/courses/course-v1:{c}/xblock/block-v1:{c}+type@lti_consumer+block@{b}/handler_noauth/outcome_service_handler"

CASES = [
    {
        "name": "edX course id with + and a block id; key and secret with reserved characters",
        "edx": {"host": "courses.edx.org", "course_id": "BerkeleyX+Data8.1x+3T2022",
                "block_id": "6333e19d6b4d46f88df671ba50f616d8", "user": "a1b2c3"},
        "url": "https://courses.edx.org" + EDX_PATH.format(c="BerkeleyX+Data8.1x+3T2022", b="6333e19d6b4d46f88df671ba50f616d8"),
        "consumer_key": "key with spaces&=+",
        "consumer_secret": "s3cr&t=/+%",
        "body": envelope("8f14e45fceea167a5a36dedd4bea2543",
                         "course-v1%3ABerkeleyX+Data8.1x+3T2022:courses.edx.org-6333e19d6b4d46f88df671ba50f616d8:a1b2c3",
                         "0.85"),
    },
    {
        "name": "query parameters (repeated names, +, escapes, empty values), upper-case host, non-default port",
        "url": "https://EDX.Example.org:8443" + EDX_PATH.format(c="MITx+6.00x+2T2024", b="b10ck") +
               "?b=2&a=3&a=1&c=hello+world&d=%7E%20x%2B&empty=&flag&oauth_extra=%C3%A9",
        "consumer_key": "otter~key.1_-",
        "consumer_secret": "p@ss w0rd: \"quoted\" ü",
        "body": envelope("m-2", "course-v1%3AMITx+6.00x+2T2024:edx.example.org:8443-b10ck:user_9", "1"),
    },
    {
        "name": "http on loopback with a port, escaped and non-ASCII body text",
        "url": "http://127.0.0.1:8765" + EDX_PATH.format(c="UCB+D8+2025", b="abc"),
        "consumer_key": "otter",
        "consumer_secret": "secret",
        "body": envelope("id &amp; &lt;3&gt;", "course-v1%3AUCB+D8+2025:127.0.0.1:8765-abc:\u00fcn\u00efcode", "0"),
    },
    {
        "name": "default ports written out are dropped",
        "url": "https://courses.edx.org:443" + EDX_PATH.format(c="X+Y+Z", b="q") + "?",
        "consumer_key": "k",
        "consumer_secret": "",
        "body": envelope("m-4", "course-v1%3AX+Y+Z:courses.edx.org-q:u", "0.3333333333333333"),
    },
    {
        "name": "http default port and a percent-encoded path",
        "url": "http://Example.COM:80/a%20b/c%2Fd/",
        "consumer_key": "k",
        "consumer_secret": "%41",
        "body": "<x>not an outcome request</x>",
    },
]


def vector(case):
    client = Client(case["consumer_key"], client_secret=case["consumer_secret"],
                    signature_method="HMAC-SHA1", nonce=NONCE, timestamp=TIMESTAMP)
    headers = {"Content-Type": "application/xml"}
    uri, signed, _ = client.sign(case["url"], http_method="POST", body=case["body"], headers=headers)
    header = signed["Authorization"]
    # The protocol parameters, decoded, as a server would read them.
    params = signature.collect_parameters(headers={"Authorization": header},
                                          exclude_oauth_signature=False)
    got = dict(params)
    # The base string, rebuilt from what oauthlib signed.
    collected = signature.collect_parameters(uri_query=urllib.parse.urlparse(uri).query,
                                             headers={"Authorization": header},
                                             exclude_oauth_signature=True)
    base = signature.signature_base_string("POST", signature.base_string_uri(uri),
                                           signature.normalize_parameters(collected))
    check = signature.sign_hmac_sha1_with_client(base, client)
    if check != got["oauth_signature"]:
        sys.exit(f"{case['name']}: base string does not give oauthlib's signature")
    out = {k: v for k, v in case.items()}
    out.update({
        "method": "POST",
        "content_type": "application/xml",
        "timestamp": int(TIMESTAMP),
        "nonce": NONCE,
        "body_hash": got["oauth_body_hash"],
        "base_string": base,
        "signature": got["oauth_signature"],
        "oauth_params": sorted([k, v] for k, v in params if k != "realm"),
        "oauthlib_authorization": header,
    })
    return out


def main():
    doc = {
        "generator": "lti/testdata/gen_vectors.py",
        "implementation": f"oauthlib {oauthlib.__version__}",
        "vectors": [vector(c) for c in CASES],
    }
    json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
