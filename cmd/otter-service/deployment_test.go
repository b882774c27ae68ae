package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/otter-service/otter-service/internal/testenv"
)

// The deployment files (deployment/kubernetes, docker-compose.yml,
// Dockerfile) set the service's settings by name; these tests hold them to
// the names the service reads (settingNames) and to the container layout
// they describe, so that a renamed setting or a moved mount cannot go
// unnoticed until a pod fails to start.

// libraryVariables are read by libraries the service uses, not by its own
// configuration: the Docker client, the Firestore client and Google's
// application default credentials.
var libraryVariables = []string{
	"DOCKER_HOST", "DOCKER_API_VERSION", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
	"FIRESTORE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS",
}

// fileSettings are the settings whose value is a file the service reads.
func isFileSetting(name string) bool {
	return strings.HasSuffix(name, "_FILE") || name == "GOOGLE_APPLICATION_CREDENTIALS" ||
		name == "OTTER_BUILD_PIP_CONF" || name == "OTTER_BUILD_CA_CERT" || strings.HasPrefix(name, "OTTER_GIT_SSH_KNOWN_HOSTS")
}

// settingMatcher tells whether a variable name is one the service reads: a
// name settingNames lists, one of its per-course forms (NAME_<COURSE> with
// any course suffix), or a library's.
func settingMatcher(t *testing.T) func(string) bool {
	t.Helper()
	exact := map[string]bool{}
	var patterns []*regexp.Regexp
	for _, n := range settingNames() {
		exact[n] = true
		if strings.Contains(n, "<COURSE>") {
			parts := strings.Split(n, "<COURSE>")
			for i := range parts {
				parts[i] = regexp.QuoteMeta(parts[i])
			}
			patterns = append(patterns, regexp.MustCompile("^"+strings.Join(parts, "[A-Z0-9_]+")+"$"))
		}
	}
	for _, n := range libraryVariables {
		exact[n] = true
	}
	if len(patterns) == 0 || !exact["OTTER_COURSE_REPOS"] {
		t.Fatalf("settingNames() looks wrong: %v", settingNames())
	}
	return func(name string) bool {
		if exact[name] {
			return true
		}
		for _, p := range patterns {
			if p.MatchString(name) {
				return true
			}
		}
		return false
	}
}

// yamlDocs parses every document of a YAML file.
func yamlDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML document", file)
	}
	return docs
}

// Accessors for parsed YAML: a missing or mistyped field gives the zero value.
func mapAt(v any, keys ...string) map[string]any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	m, _ := v.(map[string]any)
	return m
}

func listAt(v any, keys ...string) []any {
	for _, k := range keys[:len(keys)-1] {
		v = mapAt(v, k)
	}
	m, _ := v.(map[string]any)
	l, _ := m[keys[len(keys)-1]].([]any)
	return l
}

func str(v any, keys ...string) string {
	for _, k := range keys[:len(keys)-1] {
		v = mapAt(v, k)
	}
	m, _ := v.(map[string]any)
	switch x := m[keys[len(keys)-1]].(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// kubeDocs are the Kubernetes objects of some manifests, by kind and name.
type kubeDocs map[string]map[string]any

func (k kubeDocs) get(kind, name string) map[string]any { return k[kind+"/"+name] }

func collect(docs ...[]map[string]any) kubeDocs {
	k := kubeDocs{}
	for _, list := range docs {
		for _, d := range list {
			k[str(d, "kind")+"/"+str(d, "metadata", "name")] = d
		}
	}
	return k
}

func kubeDir(t *testing.T) string {
	return filepath.Join(testenv.RepoRoot(t), "deployment", "kubernetes")
}

// TestKubernetesManifests reads every YAML file under deployment/kubernetes:
// they parse, the Kustomize files name files that exist, and the base's
// objects are what an operator relies on.
func TestKubernetesManifests(t *testing.T) {
	dir := kubeDir(t)
	known := settingMatcher(t)
	files := map[string][]map[string]any{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files[p] = yamlDocs(t, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d YAML files under %s", len(files), dir)
	}

	// Kustomizations: their resources and patches exist.
	var overlays []string
	for file, docs := range files {
		if filepath.Base(file) != "kustomization.yaml" {
			continue
		}
		k := docs[0]
		if strings.Contains(file, string(filepath.Separator)+"overlays"+string(filepath.Separator)) {
			overlays = append(overlays, filepath.Dir(file))
		}
		var paths []string
		for _, r := range listAt(k, "resources") {
			paths = append(paths, fmt.Sprint(r))
		}
		for _, p := range listAt(k, "patches") {
			if f := str(p, "path"); f != "" {
				paths = append(paths, f)
			}
		}
		for _, p := range paths {
			if _, err := os.Stat(filepath.Join(filepath.Dir(file), p)); err != nil {
				t.Errorf("%s names %s: %v", file, p, err)
			}
		}
	}
	slices.Sort(overlays)
	if len(overlays) < 2 {
		t.Errorf("overlays %v; want staging and production", overlays)
	}

	// Every ConfigMap (the base's and the overlays' patches) sets only
	// settings the service reads.
	for file, docs := range files {
		for _, d := range docs {
			if str(d, "kind") != "ConfigMap" {
				continue
			}
			for name := range mapAt(d, "data") {
				if !known(name) {
					t.Errorf("%s: ConfigMap sets %s, which the service does not read (otter-service settings)", rel(t, file), name)
				}
			}
		}
	}

	base := collect(files[filepath.Join(dir, "base", "configmap.yaml")], files[filepath.Join(dir, "base", "deployment.yaml")],
		files[filepath.Join(dir, "base", "hpa.yaml")], files[filepath.Join(dir, "base", "vpa.yaml")],
		files[filepath.Join(dir, "base", "pdb.yaml")], files[filepath.Join(dir, "base", "service.yaml")])
	secret := collect(files[filepath.Join(dir, "secret.template.yaml")]).get("Secret", "otter-service-secrets")
	if secret == nil {
		t.Fatal("secret.template.yaml holds no Secret otter-service-secrets")
	}
	checkService(t, "base", base, secret, known)

	// The overlays' ConfigMap patches: their files are in the base's mounts
	// too, and each overlay names its environment.
	dep := base.get("Deployment", "otter-service")
	for _, o := range overlays {
		var env string
		for file, docs := range files {
			if filepath.Dir(file) != o {
				continue
			}
			for _, d := range docs {
				if str(d, "kind") == "ConfigMap" {
					checkFiles(t, rel(t, file), mapAt(d, "data"), serviceContainer(t, dep), mapAt(dep, "spec", "template", "spec"), secret)
					env += str(d, "data", "ENVIRONMENT")
				}
			}
		}
		if env == "" {
			t.Errorf("overlay %s does not set ENVIRONMENT (its Firestore collections)", rel(t, o))
		}
	}

	// HPA as the old service's: up to 10 pods at 80 % CPU; VPA recommends only.
	hpa := base.get("HorizontalPodAutoscaler", "otter-service")
	if str(hpa, "spec", "scaleTargetRef", "name") != "otter-service" || str(hpa, "spec", "maxReplicas") != "10" {
		t.Errorf("HPA %v: want target otter-service, maxReplicas 10", mapAt(hpa, "spec"))
	}
	var cpu string
	for _, m := range listAt(hpa, "spec", "metrics") {
		if str(m, "resource", "name") == "cpu" {
			cpu = str(mapAt(m, "resource"), "target", "averageUtilization")
		}
	}
	if cpu != "80" {
		t.Errorf("HPA CPU target %q; want 80", cpu)
	}
	vpa := base.get("VerticalPodAutoscaler", "otter-service")
	if str(vpa, "spec", "updatePolicy", "updateMode") != "Off" || str(vpa, "spec", "targetRef", "name") != "otter-service" {
		t.Errorf("VPA: want updateMode Off on otter-service, have %v", mapAt(vpa, "spec"))
	}
	if pdb := base.get("PodDisruptionBudget", "otter-service"); pdb == nil {
		t.Error("no PodDisruptionBudget otter-service")
	}
	svc := base.get("Service", "otter-service")
	if p := listAt(svc, "spec", "ports"); len(p) != 1 || str(p[0], "targetPort") != "http" {
		t.Errorf("Service ports %v: want one, to the container's http port", p)
	}
}

// kustomizeCommand returns the command that renders a Kustomize directory:
// kubectl kustomize, or kustomize build (scripts/ensure-tools.sh installs it
// where there is no kubectl).
func kustomizeCommand(t *testing.T) []string {
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		return []string{kubectl, "kustomize"}
	}
	if k, err := exec.LookPath("kustomize"); err == nil {
		return []string{k, "build"}
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		k := filepath.Join(strings.TrimSpace(string(out)), "bin", "kustomize")
		if _, err := os.Stat(k); err == nil {
			return []string{k, "build"}
		}
	}
	testenv.Missing(t, "neither kubectl nor kustomize is installed (make test installs kustomize; TestKubernetesManifests reads the files without it)")
	return nil
}

// TestKubernetesOverlaysRendered renders each overlay with kustomize and
// checks the result as the base: settings, files, probes, grace period.
func TestKubernetesOverlaysRendered(t *testing.T) {
	render := kustomizeCommand(t)
	dir := kubeDir(t)
	known := settingMatcher(t)
	secret := collect(yamlDocs(t, filepath.Join(dir, "secret.template.yaml"))).get("Secret", "otter-service-secrets")
	for _, overlay := range []string{"staging", "production"} {
		t.Run(overlay, func(t *testing.T) {
			out, err := exec.Command(render[0], append(render[1:], filepath.Join(dir, "overlays", overlay))...).Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("%s: %v\n%s", strings.Join(render, " "), err, ee.Stderr)
				}
				t.Fatal(err)
			}
			f := filepath.Join(t.TempDir(), overlay+".yaml")
			if err := os.WriteFile(f, out, 0o644); err != nil {
				t.Fatal(err)
			}
			docs := yamlDocs(t, f)
			k := collect(docs)
			for _, d := range docs {
				if ns := str(d, "metadata", "namespace"); ns == "" {
					t.Errorf("%s/%s has no namespace", str(d, "kind"), str(d, "metadata", "name"))
				}
			}
			checkService(t, overlay, k, secret, known)
			cm := k.get("ConfigMap", "otter-service-config")
			if env := str(cm, "data", "ENVIRONMENT"); !strings.Contains(env, overlay[:4]) {
				t.Errorf("ENVIRONMENT %q in %s", env, overlay)
			}
			dep := k.get("Deployment", "otter-service")
			if img := str(serviceContainer(t, dep), "image"); !strings.Contains(img, "/otter-service:") {
				t.Errorf("service image %q: the overlay should name it in a registry, with a tag", img)
			}
			// The autoscaler owns the replica count: a count in the
			// Deployment would be reapplied by every kubectl apply.
			if r := str(dep, "spec", "replicas"); r != "" {
				t.Errorf("the Deployment sets replicas: %s; leave them to the HorizontalPodAutoscaler", r)
			}
			hpa := k.get("HorizontalPodAutoscaler", "otter-service")
			if str(hpa, "spec", "minReplicas") == "" || str(hpa, "spec", "maxReplicas") == "" {
				t.Errorf("the overlay's autoscaler has no replica bounds: %v", mapAt(hpa, "spec"))
			}
		})
	}
}

// checkService checks the Deployment and its ConfigMap in k (the base, or a
// rendered overlay).
func checkService(t *testing.T, what string, k kubeDocs, secret map[string]any, known func(string) bool) {
	t.Helper()
	dep := k.get("Deployment", "otter-service")
	cm := k.get("ConfigMap", "otter-service-config")
	if dep == nil || cm == nil {
		t.Fatalf("%s: no Deployment otter-service or ConfigMap otter-service-config", what)
	}
	pod := mapAt(dep, "spec", "template", "spec")
	c := serviceContainer(t, dep)
	settings := map[string]string{}
	for name, v := range mapAt(cm, "data") {
		settings[name] = fmt.Sprint(v)
	}

	// Its environment: the ConfigMap, and variables the service reads.
	var fromCM bool
	for _, e := range listAt(c, "envFrom") {
		if str(e, "configMapRef", "name") == "otter-service-config" {
			fromCM = true
		}
	}
	if !fromCM {
		t.Errorf("%s: the service container does not take its environment from the ConfigMap", what)
	}
	env := map[string]any{}
	for _, e := range listAt(c, "env") {
		name := str(e, "name")
		env[name] = e
		if !known(name) {
			t.Errorf("%s: the service container sets %s, which the service does not read", what, name)
		}
		if v := str(e, "value"); v != "" {
			settings[name] = v
		}
	}
	// Replicas share one engine only if OTTER_INSTANCE differs: the pod's name.
	if str(env["OTTER_INSTANCE"], "valueFrom", "fieldRef", "fieldPath") != "metadata.name" {
		t.Errorf("%s: OTTER_INSTANCE is not the pod's name (fieldRef metadata.name)", what)
	}
	for _, need := range []string{"GCP_PROJECT_ID", "ENVIRONMENT", "OTTER_COURSE_REPOS", "JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN_FILE"} {
		if settings[need] == "" {
			t.Errorf("%s: %s is not set", what, need)
		}
	}
	if settings["OTTER_RUNNER"] != "docker" {
		t.Errorf("%s: OTTER_RUNNER=%q; production grades in containers (docker)", what, settings["OTTER_RUNNER"])
	}
	if settings["TEST_USER"] != "" {
		t.Errorf("%s: TEST_USER is set: every request would be unauthenticated", what)
	}
	checkFiles(t, what, mapAt(cm, "data"), c, pod, secret)

	// The engine: DOCKER_HOST's socket is in a volume the dind sidecar
	// shares, and the sidecar outlives the service (a native sidecar).
	sock, ok := strings.CutPrefix(settings["DOCKER_HOST"], "unix://")
	if !ok {
		t.Errorf("%s: DOCKER_HOST=%q; want the sidecar's unix socket", what, settings["DOCKER_HOST"])
	}
	var dind map[string]any
	for _, ic := range listAt(pod, "initContainers") {
		if str(ic, "name") == "dind" {
			dind, _ = ic.(map[string]any)
		}
	}
	if dind == nil || str(dind, "restartPolicy") != "Always" {
		t.Errorf("%s: no dind native sidecar (an init container with restartPolicy: Always)", what)
	} else {
		vol := mountedVolume(c, sock)
		if vol == "" || vol != mountedVolume(dind, sock) {
			t.Errorf("%s: the socket %s is not in a volume both the service and dind mount", what, sock)
		}
		if !slices.ContainsFunc(listAt(dind, "args"), func(a any) bool { return fmt.Sprint(a) == "--host=unix://"+sock }) {
			t.Errorf("%s: dind does not listen on %s", what, sock)
		}
	}

	// Probes on the container's port.
	port := ""
	for _, p := range listAt(c, "ports") {
		if str(p, "name") == "http" {
			port = str(p, "containerPort")
		}
	}
	listen := settings["OTTER_LISTEN"]
	if listen == "" {
		listen = ":10101"
	}
	if port == "" || !strings.HasSuffix(listen, ":"+port) {
		t.Errorf("%s: container port %q does not match OTTER_LISTEN=%s", what, port, listen)
	}
	for probe, want := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		p := mapAt(c, probe)
		if p == nil && probe == "startupProbe" {
			continue
		}
		if got, pp := str(p, "httpGet", "path"), str(p, "httpGet", "port"); got != want || (pp != "http" && pp != port) {
			t.Errorf("%s: %s is GET %s on port %s; want %s on %s", what, probe, got, pp, want, port)
		}
	}

	// Shutdown: the kubelet waits longer than the service's drain and grace.
	grace := duration(t, settings, "OTTER_SHUTDOWN_GRACE", 30*time.Second) + duration(t, settings, "OTTER_DRAIN_DELAY", 5*time.Second)
	var tgps time.Duration
	if s := str(pod, "terminationGracePeriodSeconds"); s != "" {
		d, err := time.ParseDuration(s + "s")
		if err != nil {
			t.Fatal(err)
		}
		tgps = d
	} else {
		tgps = 30 * time.Second
	}
	if tgps <= grace+5*time.Second {
		t.Errorf("%s: terminationGracePeriodSeconds %s is not above OTTER_DRAIN_DELAY + OTTER_SHUTDOWN_GRACE (%s) with room to exit", what, tgps, grace)
	}
	if timeout := duration(t, settings, "OTTER_SHUTDOWN_TIMEOUT", 55*time.Second); tgps <= timeout || timeout < grace+shutdownMargin {
		t.Errorf("%s: OTTER_SHUTDOWN_TIMEOUT %s must lie between OTTER_DRAIN_DELAY + OTTER_SHUTDOWN_GRACE + %s (%s) and terminationGracePeriodSeconds (%s)",
			what, timeout, shutdownMargin, grace+shutdownMargin, tgps)
	}

	// Resources of every container, and the service runs as non-root.
	for _, ctr := range append(listAt(pod, "containers"), listAt(pod, "initContainers")...) {
		for _, kind := range []string{"requests", "limits"} {
			r := mapAt(ctr, "resources", kind)
			if r["cpu"] == nil || r["memory"] == nil {
				t.Errorf("%s: container %s has no cpu and memory %s", what, str(ctr, "name"), kind)
			}
		}
	}
	sc := mapAt(c, "securityContext")
	if str(sc, "runAsNonRoot") != "true" || str(sc, "readOnlyRootFilesystem") != "true" || str(sc, "allowPrivilegeEscalation") != "false" {
		t.Errorf("%s: the service container's securityContext %v: want runAsNonRoot, readOnlyRootFilesystem, no privilege escalation", what, sc)
	}
	if d := settings["OTTER_DATA_DIR"]; d == "" || mountedVolume(c, d+"/x") == "" {
		t.Errorf("%s: OTTER_DATA_DIR=%q is not a mounted volume (the root file system is read-only)", what, d)
	}
}

// checkFiles checks that every file setting names a path in a volume the
// service container mounts, and one under the Secret's mount names a key of
// the Secret (template).
func checkFiles(t *testing.T, what string, data map[string]any, c, pod, secret map[string]any) {
	t.Helper()
	secretMount := ""
	for _, v := range listAt(pod, "volumes") {
		if str(v, "secret", "secretName") == "otter-service-secrets" {
			for _, m := range listAt(c, "volumeMounts") {
				if str(m, "name") == str(v, "name") {
					secretMount = str(m, "mountPath")
				}
			}
		}
	}
	if secretMount == "" {
		t.Errorf("%s: the service container does not mount the Secret otter-service-secrets", what)
	}
	keys := mapAt(secret, "stringData")
	for name, v := range data {
		value, ok := v.(string)
		if !isFileSetting(name) || !ok || value == "" {
			continue
		}
		if !path.IsAbs(value) || mountedVolume(c, value) == "" {
			t.Errorf("%s: %s=%s is not in a volume the service container mounts", what, name, value)
			continue
		}
		if dir, key := path.Split(value); path.Clean(dir) == secretMount {
			if _, ok := keys[key]; !ok {
				t.Errorf("%s: %s=%s: the Secret template has no key %s", what, name, value, key)
			}
		}
	}
}

// serviceContainer is the Deployment's container named otter-service.
func serviceContainer(t *testing.T, dep map[string]any) map[string]any {
	t.Helper()
	for _, c := range listAt(dep, "spec", "template", "spec", "containers") {
		if str(c, "name") == "otter-service" {
			return c.(map[string]any)
		}
	}
	t.Fatal("the Deployment has no container otter-service")
	return nil
}

// mountedVolume returns the volume of container c that holds file p.
func mountedVolume(c map[string]any, p string) string {
	for _, m := range listAt(c, "volumeMounts") {
		mp := path.Clean(str(m, "mountPath"))
		if strings.HasPrefix(path.Clean(p), mp+"/") {
			return str(m, "name")
		}
	}
	return ""
}

func duration(t *testing.T, settings map[string]string, name string, def time.Duration) time.Duration {
	t.Helper()
	v := settings[name]
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

func rel(t *testing.T, p string) string {
	r, err := filepath.Rel(testenv.RepoRoot(t), p)
	if err != nil {
		return p
	}
	return r
}

// TestComposeFile reads docker-compose.yml: the service's settings are the
// service's, its files and engine socket are in volumes, and it reaches the
// emulator and the engine of the same file.
func TestComposeFile(t *testing.T) {
	root := testenv.RepoRoot(t)
	known := settingMatcher(t)
	doc := yamlDocs(t, filepath.Join(root, "docker-compose.yml"))[0]
	services := mapAt(doc, "services")
	svc := mapAt(services, "otter-service")
	if svc == nil {
		t.Fatalf("no service otter-service in %v", services)
	}
	// The compose form ${NAME:-default} keeps its default.
	interp := regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`)
	settings := map[string]string{}
	switch e := svc["environment"].(type) {
	case map[string]any:
		for k, v := range e {
			settings[k] = interp.ReplaceAllString(fmt.Sprint(v), "$1")
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(fmt.Sprint(kv), "=")
			settings[k] = interp.ReplaceAllString(v, "$1")
		}
	}
	for name := range settings {
		if !known(name) {
			t.Errorf("otter-service sets %s, which the service does not read", name)
		}
	}
	// Volumes as a container's mounts, for the path checks.
	mounts := func(s map[string]any) map[string]any {
		var list []any
		for _, v := range listAt(s, "volumes") {
			parts := strings.Split(interp.ReplaceAllString(fmt.Sprint(v), "$1"), ":")
			if len(parts) >= 2 {
				list = append(list, map[string]any{"name": parts[0], "mountPath": parts[1]})
			}
		}
		return map[string]any{"volumeMounts": list}
	}
	c := mounts(svc)
	for name, value := range settings {
		if isFileSetting(name) && (!path.IsAbs(value) || mountedVolume(c, value) == "") {
			t.Errorf("%s=%s is not in a volume of the service", name, value)
		}
	}
	if d := settings["OTTER_DATA_DIR"]; d == "" || mountedVolume(c, d+"/x") == "" {
		t.Errorf("OTTER_DATA_DIR=%q is not a volume: the store would be lost with the container", d)
	}
	if settings["GCP_PROJECT_ID"] == "" {
		t.Error("GCP_PROJECT_ID is not set: the service would use its embedded store, not the emulator")
	}
	host, _, _ := strings.Cut(settings["FIRESTORE_EMULATOR_HOST"], ":")
	if mapAt(services, host) == nil {
		t.Errorf("FIRESTORE_EMULATOR_HOST=%q names no service of the file", settings["FIRESTORE_EMULATOR_HOST"])
	}
	if emu := fmt.Sprint(mapAt(services, host)["command"]); !strings.Contains(emu, "serve.js") {
		t.Errorf("the emulator service does not run tests/emulator/serve.js: %s", emu)
	}
	sock, ok := strings.CutPrefix(settings["DOCKER_HOST"], "unix://")
	engine := mapAt(services, "engine")
	if !ok || engine == nil || mountedVolume(c, sock) == "" || mountedVolume(c, sock) != mountedVolume(mounts(engine), sock) {
		t.Errorf("DOCKER_HOST=%q is not a socket in a volume shared with the engine service", settings["DOCKER_HOST"])
	}
	if settings["OTTER_RUNNER"] != "docker" {
		t.Errorf("OTTER_RUNNER=%q; want docker", settings["OTTER_RUNNER"])
	}
	listen := settings["OTTER_LISTEN"]
	if listen == "" {
		listen = ":10101"
	}
	_, port, _ := strings.Cut(listen, ":")
	if !slices.ContainsFunc(listAt(svc, "ports"), func(p any) bool { return strings.HasSuffix(fmt.Sprint(p), ":"+port) }) {
		t.Errorf("ports %v do not publish OTTER_LISTEN's port %s", listAt(svc, "ports"), port)
	}
	if err := exec.Command("docker", "compose", "version").Run(); err == nil {
		cmd := exec.Command("docker", "compose", "-f", filepath.Join(root, "docker-compose.yml"), "config", "-q")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker compose config: %v\n%s", err, out)
		}
	}
}

// TestDockerfileSettings: the production image's ENV sets only settings.
func TestDockerfileSettings(t *testing.T) {
	known := settingMatcher(t)
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	var n int
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ENV ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			name, _, _ := strings.Cut(kv, "=")
			n++
			if name == "CGO_ENABLED" || name == "GOTOOLCHAIN" { // the build stage's
				continue
			}
			if !known(name) {
				t.Errorf("Dockerfile sets %s, which the service does not read", name)
			}
		}
	}
	if n == 0 {
		t.Error("no ENV in the Dockerfile")
	}
}
