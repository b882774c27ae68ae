package firestore

import (
	"context"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otter-service/otter-service/service"
)

// What course staff do to submissions and posts.

// isFinished reports whether a submission of status st is done with grading,
// so that Requeue may take it back.
func isFinished(st string) bool {
	switch service.Status(st) {
	case service.StatusGraded, service.StatusFailed, service.StatusNeedsReview:
		return true
	}
	return false
}

// staffTx runs fn in a transaction, named op, on submission id's document
// (d as read in it), after checking with ok that its status allows what
// staff do (what: the action's words, for the ECONFLICT message).
func (s *Store) staffTx(ctx context.Context, op, id, what string, ok func(status string) bool,
	fn func(tx *firestore.Transaction, ref *firestore.DocumentRef, d *submissionDoc) error) error {
	ref := s.submissions.Doc(id)
	return mapError(s.write(op, func() error {
		return s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			snap, err := tx.Get(ref)
			if status.Code(err) == codes.NotFound {
				return service.Errorf(service.ENOTFOUND, "There is no submission %q.", id)
			}
			if err != nil {
				return err
			}
			var d submissionDoc
			if err := snap.DataTo(&d); err != nil {
				return err
			}
			if !ok(d.Status) {
				return service.Errorf(service.ECONFLICT, "Submission %q cannot be %s: it is %s.", id, what, service.Status(d.Status).Words())
			}
			return fn(tx, ref, &d)
		})
	}))
}

// Requeue implements service.Store. The submission keeps its received_us
// and its claim count; its not_before_us, the time of the request, places
// it in the queue (queue.go orders by not_before_us, then received_us), and
// its lease fields are cleared, so no earlier lease holds it. Its Grade
// record and its offer stay until Finish replaces them.
func (s *Store) Requeue(ctx context.Context, id string, r service.Requeue) error {
	return s.staffTx(ctx, "requeue", id, "graded again", isFinished,
		func(tx *firestore.Transaction, ref *firestore.DocumentRef, _ *submissionDoc) error {
			return tx.Update(ref, []firestore.Update{
				{Path: "status", Value: string(service.StatusQueued)},
				{Path: "grade", Value: nil},
				{Path: "questions", Value: nil},
				{Path: "feedback", Value: nil},
				{Path: "failure_code", Value: ""},
				{Path: "failure_message", Value: ""},
				{Path: "started_at", Value: nil},
				{Path: "finished_at", Value: nil},
				{Path: "attempts", Value: 0},
				{Path: "lease_token", Value: ""},
				{Path: "lease_expires_us", Value: 0},
				{Path: "post_status", Value: ""}, // Finish sets it again
				{Path: "batch", Value: r.Batch},
				{Path: "not_before_us", Value: r.At.UnixMicro()},
			})
		})
}

// Review implements service.Store: as Finish completes a grading, with the
// grade recorded when the submission was set aside for review.
func (s *Store) Review(ctx context.Context, id string, out service.Outcome) error {
	needsReview := func(st string) bool { return st == string(service.StatusNeedsReview) }
	return s.staffTx(ctx, "review", id, "reviewed", needsReview,
		func(tx *firestore.Transaction, ref *firestore.DocumentRef, d *submissionDoc) error {
			if out.Status != service.StatusGraded {
				var code, msg string
				if out.Failure != nil {
					code, msg = out.Failure.Code, out.Failure.Message
				}
				return tx.Update(ref, []firestore.Update{
					{Path: "status", Value: string(out.Status)},
					{Path: "failure_code", Value: code},
					{Path: "failure_message", Value: msg},
				})
			}
			if err := tx.Update(ref, []firestore.Update{
				{Path: "status", Value: string(service.StatusGraded)},
				{Path: "failure_code", Value: ""},
				{Path: "failure_message", Value: ""},
				{Path: "post_status", Value: string(out.Post)},
			}); err != nil {
				return err
			}
			var g float64
			if d.Grade != nil {
				g = *d.Grade
			}
			return s.recordGrade(tx, id, d, g, out.FinishedAt.UTC(), out)
		})
}

// Repost implements service.Store. Like a claimer that finds the post not
// due (claimPostKey), it folds the offers not yet handled into the post
// first, so the task it changes is current, and marks them handled.
func (s *Store) Repost(ctx context.Context, a service.Assignment, user string, now time.Time) (*service.PostTask, error) {
	key := service.PostKey(a, user)
	ref := s.posts.Doc(key)
	var after service.PostTask
	err := s.write("repost", func() error {
		return s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			snap, err := tx.Get(ref)
			if err != nil && status.Code(err) != codes.NotFound {
				return err
			}
			var t *service.PostTask
			if err == nil {
				var pd postDoc
				if err := snap.DataTo(&pd); err != nil {
					return err
				}
				t = pd.task(key)
			}
			offers, err := s.pendingOffers(tx, key)
			if err != nil {
				return err
			}
			if t = foldOffers(t, key, offers); t == nil {
				return service.Errorf(service.ENOTFOUND, "There is no post of %s's grade for %s.", user, a.Assignment)
			}
			if after, err = service.RepostTask(*t, now.UTC()); err != nil {
				return err
			}
			if err := s.putPostTask(tx, ref, &after); err != nil {
				return err
			}
			return markHandled(tx, offers)
		})
	})
	if err != nil {
		return nil, mapError(err)
	}
	return &after, nil
}

// AuditLog implements service.Store, over the index on type, course and
// timestamp_us.
func (s *Store) AuditLog(ctx context.Context, course string, since time.Time, limit int) ([]service.LogEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	snaps, err := s.logs.Where("type", "==", service.LogAudit).Where("course", "==", course).
		Where("timestamp_us", ">=", since.UnixMicro()).OrderBy("timestamp_us", firestore.Desc).Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, mapError(err)
	}
	return logEntries(snaps)
}
