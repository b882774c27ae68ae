package httpapi

import (
	"net/http"

	"github.com/otter-service/otter-service/service"
)

// DevIdentity authenticates every request as one fixed development user
// (TEST_USER). It exists for development and demos on one machine; it must
// never be used where students can reach the service.
type DevIdentity struct {
	User string
}

// Authenticate implements Authenticator.
func (d DevIdentity) Authenticate(*http.Request) (service.Identity, error) {
	return service.Identity{Name: d.User}, nil
}

// NoIdentity refuses every request: the service has no way to authenticate
// users configured.
type NoIdentity struct{}

// Authenticate implements Authenticator.
func (NoIdentity) Authenticate(*http.Request) (service.Identity, error) {
	return service.Identity{}, service.Errorf(service.EUNAUTHORIZED, "You are not signed in: open the grading service through JupyterHub and submit again.")
}
