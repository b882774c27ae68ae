// Package lti posts grades to edX over LTI 1.1 Basic Outcomes.
//
// It has three parts, on the standard library only:
//
//   - edx.go: the outcome service URL and the sourcedId, exactly as the
//     service this one replaces built them;
//   - oauth.go: an OAuth 1.0a HMAC-SHA1 signer (RFC 5849) with the
//     oauth_body_hash extension, which LTI 1.1 outcome requests need;
//   - outcomes.go: a client that sends a replaceResultRequest and tells a
//     failure worth retrying (network errors, timeouts, 5xx) from one that
//     is not (edX answered "failure").
//
// The signer is written here rather than taken from a library. go-lti, which
// the old design suggested, cannot be obtained from the Go module proxy; and
// the maintained OAuth 1 client libraries (github.com/dghubble/oauth1,
// github.com/gomodule/oauth1) build the Authorization header from a fixed
// set of protocol parameters, so oauth_body_hash cannot be sent with them
// (gomodule/oauth1 would sign it as an extra request parameter, then leave it
// out of the header). The signer is small, follows RFC 5849 section 3 step
// by step, and its tests check it against vectors made by an independent
// implementation (Python's oauthlib; see testdata/gen_vectors.py) and
// against the oauthlib-based consumer of the integration suite
// (tests/lti_consumer.py).
//
// Consumer secrets never appear in errors or in the String, GoString or
// slog forms of Credentials.
package lti
