package service

import (
	"errors"
	"fmt"
)

// Error codes. They are the service's own vocabulary; adapters translate their
// technology's errors into these at the boundary, and the HTTP API maps each
// code to a status in one table.
const (
	EINVALID       = "invalid"         // the request is malformed (bad JSON, missing field)
	EUNPROCESSABLE = "unprocessable"   // well-formed, but not something we can grade
	ETOOLARGE      = "too_large"       // the body exceeds the configured limit
	EUNSUPPORTED   = "unsupported"     // a content type we do not accept
	EUNAUTHORIZED  = "unauthenticated" // no credentials, or credentials we do not accept
	EFORBIDDEN     = "forbidden"       // authenticated, but not allowed
	ENOTFOUND      = "not_found"       // the thing does not exist (or is not yours)
	ECONFLICT      = "conflict"        // the operation lost a race (a lease moved on, a duplicate id)
	EUNAVAILABLE   = "unavailable"     // a dependency is down; try again later
	EINTERNAL      = "internal"        // anything else: logged, never shown in detail
)

// Error is the service's error type: a code from the list above and a message
// that is safe to show to a student.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or
// "Internal error." for anything else, so internal details never reach users.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
