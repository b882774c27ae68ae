package lti_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/lti"
)

// TestClientAgainstOAuthlib posts with the Client to tests/lti_consumer.py,
// which checks the signature and body hash with oauthlib, an independent
// OAuth 1.0a implementation. It needs the integration suite's virtualenv
// (scripts/python-env.sh .venv-tests tests/requirements.txt).
func TestClientAgainstOAuthlib(t *testing.T) {
	root := testenv.RepoRoot(t)
	python := filepath.Join(root, ".venv-tests", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		testenv.Missing(t, "the integration suite's virtualenv .venv-tests is not installed (scripts/python-env.sh .venv-tests tests/requirements.txt)")
	}
	if err := exec.Command(python, "-c", "import oauthlib").Run(); err != nil {
		testenv.Missing(t, "oauthlib is not installed in .venv-tests (scripts/python-env.sh .venv-tests tests/requirements.txt)")
	}
	cmd := exec.Command(python, filepath.Join(root, "tests", "lti_consumer.py"), "--key", testCreds.Key, "--secret", testSecret)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the consumer exited")
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatal("no word from the consumer in 30s")
		}
		return ""
	}
	edxURL, ok := strings.CutPrefix(next(), "ready ")
	if !ok {
		t.Fatalf("consumer did not start")
	}
	const course, block = "BerkeleyX+Data8.1x+3T2022", "6333e19d6b4d46f88df671ba50f616d8"
	u, err := lti.OutcomeURL(edxURL, course, block)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := lti.SourcedID(edxURL, course, block, "a1b2c3")
	if err != nil {
		t.Fatal(err)
	}
	var event struct {
		Kind, Detail string
		Outcome      *struct {
			SourcedID string `json:"sourced_id"`
			User      string `json:"user"`
			CourseID  string `json:"course_id"`
			BlockID   string `json:"block_id"`
			ScoreText string `json:"score_text"`
		}
	}
	c := &lti.Client{Timeout: 10 * time.Second}
	for _, score := range []float64{0.85, 1, 0} {
		if err := c.ReplaceResult(context.Background(), testCreds, u, sid, score); err != nil {
			t.Fatalf("score %v: %v", score, err)
		}
		if err := json.Unmarshal([]byte(next()), &event); err != nil {
			t.Fatal(err)
		}
		want, _ := lti.FormatScore(score)
		if o := event.Outcome; event.Kind != "accepted" || o == nil || o.SourcedID != sid || o.User != "a1b2c3" ||
			o.CourseID != course || o.BlockID != block || o.ScoreText != want {
			t.Errorf("score %v: consumer saw %+v (outcome %+v)", score, event, event.Outcome)
		}
	}

	wrong := lti.Credentials{Key: testCreds.Key, Secret: "not the secret"}
	err = c.ReplaceResult(context.Background(), wrong, u, sid, 0.5)
	if !lti.IsPermanent(err) || !strings.Contains(err.Error(), "signature mismatch") {
		t.Errorf("wrong secret: err = %v; want a permanent failure", err)
	}
	if err := json.Unmarshal([]byte(next()), &event); err != nil || event.Kind != "rejected" {
		t.Errorf("wrong secret: consumer saw %+v, %v", event, err)
	}
}
