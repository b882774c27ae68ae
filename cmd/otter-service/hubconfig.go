package main

import (
	"encoding/json"

	"github.com/otter-service/otter-service/courseconfig/git"
	"github.com/otter-service/otter-service/service/jupyterhub"
)

// hub reads the environment JupyterHub gives its services. It returns nil
// when JUPYTERHUB_API_URL is not set: the service then authenticates nobody
// (or only TEST_USER, in development).
func (p *envParser) hub(prefix, testUser string, courses map[string]git.Repo) *jupyterhub.Config {
	api := p.str("JUPYTERHUB_API_URL", "")
	if api == "" {
		if p.getenv("JUPYTERHUB_API_TOKEN") != "" || p.getenv("JUPYTERHUB_API_TOKEN_FILE") != "" {
			p.fail("JUPYTERHUB_API_TOKEN is set but JUPYTERHUB_API_URL is not")
		}
		return nil
	}
	if testUser != "" {
		p.fail("TEST_USER is set, but so is JUPYTERHUB_API_URL: the development identity is never used where JupyterHub authenticates students; unset TEST_USER")
	}
	c := &jupyterhub.Config{
		APIURL:      api,
		APIToken:    p.secret("JUPYTERHUB_API_TOKEN"),
		ServiceName: p.str("JUPYTERHUB_SERVICE_NAME", "otter_grade"),
		Prefix:      prefix,
		ClientID:    p.str("JUPYTERHUB_CLIENT_ID", ""),
		CallbackURL: p.str("JUPYTERHUB_OAUTH_CALLBACK_URL", ""),
		PublicURL:   p.str("JUPYTERHUB_PUBLIC_URL", ""),
		BaseURL:     p.str("JUPYTERHUB_BASE_URL", "/"),
		StaffGroup:  p.str("OTTER_STAFF_GROUP", ""),
	}
	for course := range courses {
		if g := p.str("OTTER_STAFF_GROUP_"+envSuffix(course), ""); g != "" {
			if c.CourseStaffGroups == nil {
				c.CourseStaffGroups = map[string]string{}
			}
			c.CourseStaffGroups[course] = g
		}
	}
	if s := p.str("JUPYTERHUB_OAUTH_ACCESS_SCOPES", ""); s != "" {
		if err := json.Unmarshal([]byte(s), &c.AccessScopes); err != nil {
			p.fail("JUPYTERHUB_OAUTH_ACCESS_SCOPES must be a JSON list of scopes, got %q", s)
		}
	}
	if _, err := jupyterhub.New(*c); err != nil {
		p.fail("%v", err)
	}
	return c
}
