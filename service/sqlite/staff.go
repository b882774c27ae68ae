package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/otter-service/otter-service/service"
)

// What course staff do to submissions and posts.

// finishedStatuses are the statuses Requeue takes a submission from.
const finishedStatuses = `('graded', 'failed', 'needs_review')`

// Requeue implements service.Store. The submission keeps its seq; its
// not_before, the time of the request, places it in the queue.
func (s *Store) Requeue(ctx context.Context, id string, r service.Requeue) error {
	return mapError(s.tx(ctx, "requeue", func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE submissions
			SET status = 'queued', grade = NULL, questions = NULL, feedback = NULL, failure_code = NULL, failure_msg = NULL,
				started_at = NULL, finished_at = NULL, attempts = 0, lease_token = NULL, lease_expires = NULL,
				not_before = ?, post_status = NULL, batch = ?
			WHERE id = ? AND status IN `+finishedStatuses, r.At.UnixNano(), nullString(r.Batch), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return notFinished(tx, id, "graded again")
	}))
}

// notFinished returns the error of a staff action on submission id that
// changed nothing: ENOTFOUND, or ECONFLICT naming its status.
func notFinished(tx *sql.Tx, id, what string) error {
	var status string
	err := tx.QueryRow(`SELECT status FROM submissions WHERE id = ?`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return service.Errorf(service.ENOTFOUND, "There is no submission %q.", id)
	}
	if err != nil {
		return err
	}
	return service.Errorf(service.ECONFLICT, "Submission %q cannot be %s: it is %s.", id, what, service.Status(status).Words())
}

// Review implements service.Store.
func (s *Store) Review(ctx context.Context, id string, out service.Outcome) error {
	return mapError(s.tx(ctx, "review", func(tx *sql.Tx) error {
		var sub service.Submission
		var received int64
		var grade sql.NullFloat64
		err := tx.QueryRow(`SELECT user, course, section, assignment, received_at, grade FROM submissions WHERE id = ? AND status = 'needs_review'`, id).
			Scan(&sub.User, &sub.Course, &sub.Section, &sub.Assignment.Assignment, &received, &grade)
		if errors.Is(err, sql.ErrNoRows) {
			return notFinished(tx, id, "reviewed")
		}
		if err != nil {
			return err
		}
		sub.ID, sub.ReceivedAt = id, time.Unix(0, received).UTC()
		if out.Status != service.StatusGraded {
			var code, msg any
			if out.Failure != nil {
				code, msg = out.Failure.Code, out.Failure.Message
			}
			_, err := tx.Exec(`UPDATE submissions SET status = ?, failure_code = ?, failure_msg = ? WHERE id = ?`, out.Status, code, msg, id)
			return err
		}
		if _, err := tx.Exec(`UPDATE submissions SET status = 'graded', failure_code = NULL, failure_msg = NULL, post_status = ? WHERE id = ?`,
			string(out.Post), id); err != nil {
			return err
		}
		return recordGrade(tx, &sub, grade.Float64, out.FinishedAt.UTC(), out)
	}))
}

// Repost implements service.Store.
func (s *Store) Repost(ctx context.Context, a service.Assignment, user string, now time.Time) (*service.PostTask, error) {
	var after service.PostTask
	err := s.tx(ctx, "repost", func(tx *sql.Tx) error {
		t, err := scanPostTask(tx.QueryRow(`SELECT `+postColumns+` FROM posts WHERE key = ?`, service.PostKey(a, user)))
		if errors.Is(err, sql.ErrNoRows) {
			return service.Errorf(service.ENOTFOUND, "There is no post of %s's grade for %s.", user, a.Assignment)
		}
		if err != nil {
			return err
		}
		if after, err = service.RepostTask(*t, now.UTC()); err != nil {
			return err
		}
		return putPostTask(tx, &after)
	})
	if err != nil {
		return nil, mapError(err)
	}
	return &after, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
