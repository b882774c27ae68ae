package firestore

import (
	"context"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otter-service/otter-service/service"
)

// postDoc is one student's post for one assignment, as stored in
// {ENVIRONMENT}-posts under its service.PostKey.
type postDoc struct {
	User         string     `firestore:"user"`
	Course       string     `firestore:"course"`
	Section      string     `firestore:"section"`
	Assignment   string     `firestore:"assignment"`
	Status       string     `firestore:"status"`
	NotBefore    int64      `firestore:"not_before_us"`
	Attempts     int        `firestore:"attempts"`
	Claims       int        `firestore:"claims"`
	LeaseToken   string     `firestore:"lease_token"`
	LeaseExpires int64      `firestore:"lease_expires_us"`
	LastError    string     `firestore:"last_error"`
	Want         *gradeDoc  `firestore:"want"`
	WantSince    *time.Time `firestore:"want_since"`
	InFlight     *gradeDoc  `firestore:"inflight"`
	Interrupted  *gradeDoc  `firestore:"interrupted"`
	Sent         *gradeDoc  `firestore:"sent"`
	Confirmed    bool       `firestore:"confirmed"`
}

// gradeDoc is a service.PostedGrade as stored.
type gradeDoc struct {
	SubmissionID string  `firestore:"submission_id"`
	Grade        float64 `firestore:"grade"`
	Received     int64   `firestore:"received_us"`
}

func toGradeDoc(g service.PostedGrade) *gradeDoc {
	if g.SubmissionID == "" {
		return nil
	}
	return &gradeDoc{SubmissionID: g.SubmissionID, Grade: g.Grade, Received: g.ReceivedAt.UnixMicro()}
}

func (g *gradeDoc) grade() service.PostedGrade {
	if g == nil {
		return service.PostedGrade{}
	}
	return service.PostedGrade{SubmissionID: g.SubmissionID, Grade: g.Grade, ReceivedAt: time.UnixMicro(g.Received).UTC()}
}

func (d *postDoc) task(key string) *service.PostTask {
	t := &service.PostTask{
		Key: key, User: d.User, Assignment: service.Assignment{Course: d.Course, Section: d.Section, Assignment: d.Assignment},
		Status: service.PostTaskStatus(d.Status), Attempts: d.Attempts, LastError: d.LastError,
		Want: d.Want.grade(), InFlight: d.InFlight.grade(), Interrupted: d.Interrupted.grade(), Sent: d.Sent.grade(), Confirmed: d.Confirmed,
	}
	if d.Status == string(service.TaskQueued) {
		t.NextAt = time.UnixMicro(d.NotBefore).UTC()
	}
	if d.WantSince != nil {
		t.WantSince = d.WantSince.UTC()
	}
	return t
}

// getPostTask reads, in tx, the post of user's grade for a (nil if there is
// none yet) and returns it with its document.
func (s *Store) getPostTask(tx *firestore.Transaction, a service.Assignment, user string) (*service.PostTask, *firestore.DocumentRef, error) {
	ref := s.posts.Doc(service.PostKey(a, user))
	snap, err := tx.Get(ref)
	if status.Code(err) == codes.NotFound {
		return nil, ref, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var d postDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, nil, err
	}
	return d.task(ref.ID), ref, nil
}

// putPostTask writes t's own fields in tx, keeping its claim count, and
// clears its lease unless it is posting.
func (s *Store) putPostTask(tx *firestore.Transaction, ref *firestore.DocumentRef, t *service.PostTask) error {
	var nb int64
	if t.Status == service.TaskQueued {
		nb = t.NextAt.UnixMicro()
	}
	fields := map[string]any{
		"user": t.User, "course": t.Course, "section": t.Section, "assignment": t.Assignment.Assignment,
		"status": string(t.Status), "not_before_us": nb, "attempts": t.Attempts, "last_error": t.LastError,
		"want": toGradeDoc(t.Want), "want_since": t.WantSince.UTC(), "inflight": toGradeDoc(t.InFlight),
		"interrupted": toGradeDoc(t.Interrupted), "sent": toGradeDoc(t.Sent), "confirmed": t.Confirmed,
	}
	if t.Status != service.TaskPosting {
		fields["lease_token"], fields["lease_expires_us"] = "", 0
	}
	return tx.Set(ref, fields, firestore.MergeAll)
}

// PostTask implements service.Store.
func (s *Store) PostTask(ctx context.Context, a service.Assignment, user string) (*service.PostTask, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	ref := s.posts.Doc(service.PostKey(a, user))
	snap, err := ref.Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, service.Errorf(service.ENOTFOUND, "There is no post of %s's grade for %s.", user, a.Assignment)
	}
	if err != nil {
		return nil, mapError(err)
	}
	var d postDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, err
	}
	return d.task(ref.ID), nil
}

// migratePosts moves the posts of a version that posted per submission
// (post_status "pending" with a post_next_us, on the submission) into
// {ENVIRONMENT}-posts: each such grade is offered to its student's post as
// if just graded (the newest received wins), and the submission's
// post_next_us is cleared, in one transaction per submission.
//
// The post queue runs it before its first claim (see Claim), until it
// succeeds once.
func (s *Store) migratePosts(ctx context.Context) (int, error) {
	n := 0
	for {
		snaps, err := s.submissions.Where("post_status", "==", string(service.PostPending)).Where("post_next_us", ">", 0).
			Limit(100).Documents(ctx).GetAll()
		if err != nil {
			return n, mapError(err)
		}
		if len(snaps) == 0 {
			return n, nil
		}
		for _, snap := range snaps {
			err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
				fresh, err := tx.Get(snap.Ref)
				if err != nil {
					return err
				}
				var d submissionDoc
				if err := fresh.DataTo(&d); err != nil {
					return err
				}
				a := service.Assignment{Course: d.Course, Section: d.Section, Assignment: d.Assignment}
				post, ref, err := s.getPostTask(tx, a, d.User)
				if err != nil {
					return err
				}
				if err := tx.Update(snap.Ref, []firestore.Update{{Path: "post_next_us", Value: 0}}); err != nil {
					return err
				}
				if d.PostStatus != string(service.PostPending) || d.PostNext == 0 || d.Grade == nil {
					return nil
				}
				finished := time.UnixMicro(d.PostNext).UTC()
				if d.FinishedAt != nil {
					finished = d.FinishedAt.UTC()
				}
				g := service.PostedGrade{SubmissionID: snap.Ref.ID, Grade: *d.Grade, ReceivedAt: time.UnixMicro(d.Received).UTC()}
				after, changed := service.OfferGrade(post, ref.ID, d.User, a, g, finished, service.PostLatest)
				if !changed {
					return nil
				}
				return s.putPostTask(tx, ref, &after)
			})
			if err != nil {
				return n, mapError(err)
			}
			n++
		}
	}
}
