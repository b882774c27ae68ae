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

// The work queue (service/queue.go): one lease protocol over two tables,
// submissions (KindGrade, keyed by id) and posts (KindPost, keyed by key),
// whose rows share the columns status, not_before, attempts, lease_token
// and lease_expires. Each step is one transaction on the single writer
// connection, so claims are exclusive.

// kind is how the queue finds one kind of work.
type kind struct {
	table, key         string
	available, running string
	// order sorts due items: available ones by orderAvailable, expired
	// leases by orderExpired, each two columns in the same units.
	orderAvailable, orderExpired [2]string
	// onClaim are the kind's own assignments made by a claim, evaluated on
	// the row as it was before.
	onClaim string
	// onRelease are those made by a release.
	onRelease string
}

var kinds = map[service.Kind]kind{
	// Gradings by the time they became due (not_before: unset for a new
	// submission, the time of the request for a regrade, the time it may
	// be tried again for one released until later), then by creation; as
	// the Firestore store orders them.
	service.KindGrade: {
		table: "submissions", key: "id", available: "queued", running: "grading",
		orderAvailable: [2]string{"COALESCE(not_before, 0)", "seq"}, orderExpired: [2]string{"COALESCE(not_before, 0)", "seq"},
		onClaim: "started_at = ?3",
	},
	service.KindPost: {
		table: "posts", key: "key", available: string(service.TaskQueued), running: string(service.TaskPosting),
		orderAvailable: [2]string{"COALESCE(not_before, 0)", "rowid"}, orderExpired: [2]string{"lease_expires", "rowid"},
		onClaim:   "interrupted = CASE WHEN status = 'posting' THEN inflight END, inflight = want, claimed_at = ?3",
		onRelease: ", inflight = NULL",
	},
}

func kindOf(k service.Kind) (kind, error) {
	q, ok := kinds[k]
	if !ok {
		return kind{}, fmt.Errorf("sqlite: no work of kind %q", k)
	}
	return q, nil
}

// Claim implements service.Store.
func (s *Store) Claim(ctx context.Context, k service.Kind, now time.Time, ttl time.Duration) (*service.Job, error) {
	q, err := kindOf(k)
	if err != nil {
		return nil, err
	}
	lease := &service.Lease{Kind: k, Token: service.NewID(), Expires: now.Add(ttl).UTC()}
	var job *service.Job
	err = s.tx(ctx, "claim:"+string(k), func(tx *sql.Tx) error {
		// The earliest of: the first available item that is due, and the
		// first whose lease expired.
		a, e := q.orderAvailable, q.orderExpired
		err := tx.QueryRow(`SELECT key FROM (
				SELECT key, ord, ord2 FROM (SELECT `+q.key+` AS key, `+a[0]+` AS ord, `+a[1]+` AS ord2 FROM `+q.table+`
					WHERE status = ?1 AND (not_before IS NULL OR not_before <= ?3) ORDER BY `+a[0]+`, `+a[1]+` LIMIT 1)
				UNION ALL
				SELECT key, ord, ord2 FROM (SELECT `+q.key+` AS key, `+e[0]+` AS ord, `+e[1]+` AS ord2 FROM `+q.table+`
					WHERE status = ?2 AND lease_expires <= ?3 ORDER BY lease_expires LIMIT 1)
			) ORDER BY ord, ord2 LIMIT 1`, q.available, q.running, now.UnixNano()).Scan(&lease.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		update := `UPDATE ` + q.table + ` SET ` + q.onClaim + `, status = ?4, lease_token = ?1, lease_expires = ?2, attempts = attempts + 1
			WHERE ` + q.key + ` = ?5 RETURNING `
		args := []any{lease.Token, lease.Expires.UnixNano(), now.UnixNano(), q.running, lease.ID}
		job = &service.Job{Lease: lease}
		if k == service.KindGrade {
			job.Submission, err = scanSubmission(tx.QueryRow(update+submissionColumns, args...))
		} else {
			job.Post, err = scanPostTask(tx.QueryRow(update+postColumns, args...))
		}
		return err
	})
	if err != nil {
		return nil, mapError(err)
	}
	return job, nil
}

// Extend implements service.Store.
func (s *Store) Extend(ctx context.Context, l *service.Lease, now time.Time, ttl time.Duration) error {
	q, err := kindOf(l.Kind)
	if err != nil {
		return err
	}
	expires := now.Add(ttl).UTC()
	err = s.exec1(ctx, `UPDATE `+q.table+` SET lease_expires = ? WHERE `+q.key+` = ? AND lease_token = ? AND status = ?`,
		expires.UnixNano(), l.ID, l.Token, q.running)
	if err == nil {
		l.Expires = expires
	}
	return err
}

// Release implements service.Store.
func (s *Store) Release(ctx context.Context, l *service.Lease, notBefore time.Time) error {
	q, err := kindOf(l.Kind)
	if err != nil {
		return err
	}
	var nb any
	if !notBefore.IsZero() {
		nb = notBefore.UnixNano()
	}
	return s.exec1(ctx, `UPDATE `+q.table+`
		SET status = ?, lease_token = NULL, lease_expires = NULL, attempts = MAX(attempts - 1, 0), not_before = ?`+q.onRelease+`
		WHERE `+q.key+` = ? AND lease_token = ? AND status = ?`, q.available, nb, l.ID, l.Token, q.running)
}

// Finish implements service.Store.
func (s *Store) Finish(ctx context.Context, l *service.Lease, out service.Outcome) error {
	if l.Kind != service.KindGrade {
		return fmt.Errorf("sqlite: Finish of a %s lease", l.Kind)
	}
	id := l.ID
	var questions, feedback []byte
	var fcode, fmsg any
	scored := out.Status == service.StatusGraded || out.Status == service.StatusNeedsReview
	if scored {
		var err error
		if questions, err = json.Marshal(out.Questions); err != nil {
			return err
		}
		if len(out.Feedback) > 0 {
			if feedback, err = json.Marshal(out.Feedback); err != nil {
				return err
			}
		}
	}
	if out.Failure != nil {
		fcode, fmsg = out.Failure.Code, out.Failure.Message
	}
	var grade, post any
	if scored {
		grade = out.Grade
	}
	if out.Status == service.StatusGraded {
		post = string(out.Post)
	}
	return mapError(s.tx(ctx, "finish", func(tx *sql.Tx) error {
		// The lease token stays on a finished submission, so a retried
		// Finish by the same holder matches again and changes nothing new.
		var sub service.Submission
		var finished, received int64
		err := tx.QueryRow(`UPDATE submissions
			SET status = ?, grade = ?, questions = ?, feedback = ?, failure_code = ?, failure_msg = ?, lease_expires = NULL,
				finished_at = COALESCE(finished_at, ?), post_status = COALESCE(post_status, ?)
			WHERE id = ? AND lease_token = ? AND status IN ('grading', ?)
			RETURNING user, course, section, assignment, finished_at, received_at`,
			out.Status, grade, nullable(questions), nullable(feedback), fcode, fmsg, out.FinishedAt.UnixNano(), post, id, l.Token, out.Status).
			Scan(&sub.User, &sub.Course, &sub.Section, &sub.Assignment.Assignment, &finished, &received)
		if errors.Is(err, sql.ErrNoRows) {
			return service.Errorf(service.ECONFLICT, "Submission %q is no longer held by this worker.", id)
		}
		if err != nil || out.Status != service.StatusGraded {
			return err
		}
		sub.ID, sub.ReceivedAt = id, time.Unix(0, received).UTC()
		return recordGrade(tx, &sub, out.Grade, time.Unix(0, finished).UTC(), out)
	}))
}

// recordGrade writes sub's Grade record, grade g at time at (a regrade's
// replaces the old), and with out.Post PostPending offers g to sub's post.
func recordGrade(tx *sql.Tx, sub *service.Submission, g float64, at time.Time, out service.Outcome) error {
	_, err := tx.Exec(`INSERT INTO grades (submission_id, user, grade, course, section, assignment, timestamp)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (submission_id) DO UPDATE SET grade = excluded.grade, timestamp = excluded.timestamp`,
		sub.ID, sub.User, g, sub.Course, sub.Section, sub.Assignment.Assignment, at.UnixNano())
	if err != nil || out.Post != service.PostPending {
		return err
	}
	return offerGrade(tx, sub.User, sub.Assignment, service.PostedGrade{SubmissionID: sub.ID, Grade: g, ReceivedAt: sub.ReceivedAt}, at, out.Policy)
}

// FinishPost implements service.Store.
func (s *Store) FinishPost(ctx context.Context, l *service.Lease, r service.PostResult) error {
	if l.Kind != service.KindPost {
		return fmt.Errorf("sqlite: FinishPost of a %s lease", l.Kind)
	}
	return mapError(s.tx(ctx, "finish-post", func(tx *sql.Tx) error {
		t, err := scanPostTask(tx.QueryRow(`SELECT `+postColumns+` FROM posts WHERE key = ? AND lease_token = ? AND status = 'posting'`, l.ID, l.Token))
		if errors.Is(err, sql.ErrNoRows) {
			return service.Errorf(service.ECONFLICT, "The post is no longer held by this worker.")
		}
		if err != nil {
			return err
		}
		after, sent := service.ApplyPostResult(*t, r)
		if err := putPostTask(tx, &after); err != nil {
			return err
		}
		for _, m := range sent {
			if _, err := tx.Exec(`UPDATE submissions SET posted_at = ?, post_confirmed = ? WHERE id = ?`,
				r.At.UnixNano(), m.Confirmed, m.SubmissionID); err != nil {
				return err
			}
		}
		return nil
	}))
}
