// Package deployment holds no code: it is the home of the deployment files
// (grading image, Kubernetes manifests, JupyterHub configuration, Firestore
// indexes) and of the tests that build and read them, so that they cannot
// drift from the service.
package deployment
