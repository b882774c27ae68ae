package main

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestHubConfig(t *testing.T) {
	load := func(extra map[string]string) (*config, error) {
		return loadWith(map[string]string{"OTTER_COURSE_REPOS": "8x=/srv/8x", "OTTER_COMMAND": "/bin/true"}, extra)
	}

	c, err := load(map[string]string{"TEST_USER": "student"})
	if err != nil || c.Hub != nil {
		t.Fatalf("without the Hub's variables: %+v, %v", c, err)
	}

	c, err = load(map[string]string{
		"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api", "JUPYTERHUB_API_TOKEN": "secret-token",
		"JUPYTERHUB_SERVICE_NAME": "otter_grade", "JUPYTERHUB_OAUTH_ACCESS_SCOPES": `["access:services!service=otter_grade"]`,
		"OTTER_STAFF_GROUP": "staff",
	})
	if err != nil || c.Hub == nil || c.Hub.APIToken != "secret-token" || c.Hub.StaffGroup != "staff" ||
		len(c.Hub.AccessScopes) != 1 || c.Hub.AccessScopes[0] != "access:services!service=otter_grade" {
		t.Fatalf("with the Hub's variables: %+v, %v", c.Hub, err)
	}

	for name, extra := range map[string]map[string]string{
		"TEST_USER": {"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api", "JUPYTERHUB_API_TOKEN": "x", "TEST_USER": "student"},
		"JUPYTERHUB_OAUTH_ACCESS_SCOPES": {"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api", "JUPYTERHUB_API_TOKEN": "x",
			"JUPYTERHUB_OAUTH_ACCESS_SCOPES": "access:services"},
		"JUPYTERHUB_API_TOKEN": {"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api"},
		"JUPYTERHUB_API_URL":   {"JUPYTERHUB_API_TOKEN": "x"},
	} {
		_, err := load(extra)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: %v; want an error naming %s", extra, err, name)
		}
		if err != nil && strings.Contains(err.Error(), `"x"`) {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}

func TestSettingNames(t *testing.T) {
	names := settingNames()
	for _, want := range []string{"OTTER_COURSE_REPOS", "JUPYTERHUB_API_TOKEN_FILE", "LTI_CONSUMER_SECRET_FILE", "OTTER_MAX_QUEUE",
		"OTTER_GIT_TOKEN_<COURSE>_FILE", "OTTER_GITHUB_APP_PRIVATE_KEY_FILE", "OTTER_GIT_SSH_KEY", "POST_GRADE", "GCP_PROJECT_ID"} {
		if !slices.Contains(names, want) {
			t.Errorf("settings do not list %s: %v", want, names)
		}
	}
}

// loadWith loads the configuration from base with extra's settings over it.
func loadWith(base, extra map[string]string) (*config, error) {
	env := maps.Clone(base)
	maps.Copy(env, extra)
	return loadConfig(func(k string) string { return env[k] })
}
