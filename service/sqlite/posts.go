package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/otter-service/otter-service/service"
)

// The posts table: one row per student and assignment (service.PostTask).

// offerGrade offers g to its student's post (service.OfferGrade).
func offerGrade(tx *sql.Tx, user string, a service.Assignment, g service.PostedGrade, at time.Time, policy service.PostPolicy) error {
	key := service.PostKey(a, user)
	cur, err := scanPostTask(tx.QueryRow(`SELECT `+postColumns+` FROM posts WHERE key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		cur, err = nil, nil
	}
	if err != nil {
		return err
	}
	after, changed := service.OfferGrade(cur, key, user, a, g, at, policy)
	if !changed {
		return nil
	}
	return putPostTask(tx, &after)
}

// PostTask implements service.Store.
func (s *Store) PostTask(ctx context.Context, a service.Assignment, user string) (*service.PostTask, error) {
	t, err := scanPostTask(s.r.QueryRowContext(ctx, `SELECT `+postColumns+` FROM posts WHERE key = ?`, service.PostKey(a, user)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, service.Errorf(service.ENOTFOUND, "There is no post of %s's grade for %s.", user, a.Assignment)
	}
	return t, mapError(err)
}

const postColumns = `key, user, course, section, assignment, status, not_before, attempts, last_error,
	want, want_since, inflight, interrupted, sent, confirmed`

// gradeJSON is a service.PostedGrade as a column holds it.
type gradeJSON struct {
	ID       string  `json:"id"`
	Grade    float64 `json:"grade"`
	Received int64   `json:"received"`
}

func gradeColumn(g service.PostedGrade) any {
	if g.SubmissionID == "" {
		return nil
	}
	b, _ := json.Marshal(gradeJSON{ID: g.SubmissionID, Grade: g.Grade, Received: g.ReceivedAt.UnixNano()})
	return string(b)
}

func parseGrade(c sql.NullString) (service.PostedGrade, error) {
	if !c.Valid || c.String == "" {
		return service.PostedGrade{}, nil
	}
	var g gradeJSON
	if err := json.Unmarshal([]byte(c.String), &g); err != nil {
		return service.PostedGrade{}, err
	}
	return service.PostedGrade{SubmissionID: g.ID, Grade: g.Grade, ReceivedAt: time.Unix(0, g.Received).UTC()}, nil
}

func scanPostTask(row interface{ Scan(...any) error }) (*service.PostTask, error) {
	var (
		t                                service.PostTask
		notBefore, since                 sql.NullInt64
		lastError                        sql.NullString
		want, inflight, interrupted, snt sql.NullString
	)
	err := row.Scan(&t.Key, &t.User, &t.Course, &t.Section, &t.Assignment.Assignment, &t.Status, &notBefore, &t.Attempts, &lastError,
		&want, &since, &inflight, &interrupted, &snt, &t.Confirmed)
	if err != nil {
		return nil, err
	}
	t.LastError = lastError.String
	if notBefore.Valid {
		t.NextAt = time.Unix(0, notBefore.Int64).UTC()
	}
	if since.Valid {
		t.WantSince = time.Unix(0, since.Int64).UTC()
	}
	for _, c := range []struct {
		col sql.NullString
		to  *service.PostedGrade
	}{{want, &t.Want}, {inflight, &t.InFlight}, {interrupted, &t.Interrupted}, {snt, &t.Sent}} {
		if *c.to, err = parseGrade(c.col); err != nil {
			return nil, fmt.Errorf("post %s: %w", t.Key, err)
		}
	}
	return &t, nil
}

// putPostTask writes t's own fields, and clears its lease unless it is
// posting.
func putPostTask(tx *sql.Tx, t *service.PostTask) error {
	var notBefore any
	if !t.NextAt.IsZero() {
		notBefore = t.NextAt.UnixNano()
	}
	_, err := tx.Exec(`INSERT INTO posts (key, user, course, section, assignment, status, not_before, attempts, last_error,
			want, want_since, inflight, interrupted, sent, confirmed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET status = excluded.status, not_before = excluded.not_before, attempts = excluded.attempts,
			last_error = excluded.last_error, want = excluded.want, want_since = excluded.want_since, inflight = excluded.inflight,
			interrupted = excluded.interrupted, sent = excluded.sent, confirmed = excluded.confirmed,
			lease_token = CASE WHEN excluded.status = 'posting' THEN lease_token END,
			lease_expires = CASE WHEN excluded.status = 'posting' THEN lease_expires END`,
		t.Key, t.User, t.Course, t.Section, t.Assignment.Assignment, string(t.Status), notBefore, t.Attempts, t.LastError,
		gradeColumn(t.Want), t.WantSince.UnixNano(), gradeColumn(t.InFlight), gradeColumn(t.Interrupted), gradeColumn(t.Sent), t.Confirmed)
	return err
}
