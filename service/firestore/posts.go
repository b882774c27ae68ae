package firestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otter-service/otter-service/service"
)

// Posts on Firestore. A post document ({ENVIRONMENT}-posts/{PostKey}) is
// written only by the holder of a lease on it, which the lease documents
// make exclusive (queue.go): its writes never race, even where an emulator
// does not isolate transactions. A completed grading does not write the
// post: it writes an offer ({ENVIRONMENT}-offers/{submission id}), once. The
// post's next lease holder folds the offers not yet handled into the post
// (service.OfferGrade, in the order they were made) and marks them handled;
// an offer made meanwhile stays unhandled, and makes the post a candidate
// for claiming again. Reads of a post fold its unhandled offers too, so
// they see the grade selected.

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

// offerDoc is a graded submission's offer to its student's post.
type offerDoc struct {
	Key        string  `firestore:"key"`
	User       string  `firestore:"user"`
	Course     string  `firestore:"course"`
	Section    string  `firestore:"section"`
	Assignment string  `firestore:"assignment"`
	Grade      float64 `firestore:"grade"`
	Received   int64   `firestore:"received_us"`
	At         int64   `firestore:"at_us"` // when it was graded
	Policy     string  `firestore:"policy"`
	Handled    bool    `firestore:"handled"`
}

type offer struct {
	ref *firestore.DocumentRef
	d   offerDoc
}

// pendingOffers returns, in tx, the offers to post key not yet handled,
// oldest first.
func (s *Store) pendingOffers(tx *firestore.Transaction, key string) ([]offer, error) {
	snaps, err := tx.Documents(s.offers.Where("key", "==", key).Where("handled", "==", false)).GetAll()
	if err != nil {
		return nil, err
	}
	return toOffers(snaps)
}

func toOffers(snaps []*firestore.DocumentSnapshot) ([]offer, error) {
	out := make([]offer, 0, len(snaps))
	for _, snap := range snaps {
		var d offerDoc
		if err := snap.DataTo(&d); err != nil {
			return nil, fmt.Errorf("firestore: offer %s: %w", snap.Ref.ID, err)
		}
		out = append(out, offer{ref: snap.Ref, d: d})
	}
	sortBy(out, func(a, b offer) bool { return a.d.At < b.d.At || a.d.At == b.d.At && a.ref.ID < b.ref.ID })
	return out, nil
}

// foldOffers returns t (nil: no post yet) with the offers made to it.
func foldOffers(t *service.PostTask, key string, offers []offer) *service.PostTask {
	for _, o := range offers {
		a := service.Assignment{Course: o.d.Course, Section: o.d.Section, Assignment: o.d.Assignment}
		g := service.PostedGrade{SubmissionID: o.ref.ID, Grade: o.d.Grade, ReceivedAt: time.UnixMicro(o.d.Received).UTC()}
		after, _ := service.OfferGrade(t, key, o.d.User, a, g, time.UnixMicro(o.d.At).UTC(), service.PostPolicy(o.d.Policy))
		t = &after
	}
	return t
}

func markHandled(tx *firestore.Transaction, offers []offer) error {
	for _, o := range offers {
		if err := tx.Update(o.ref, []firestore.Update{{Path: "handled", Value: true}}); err != nil {
			return err
		}
	}
	return nil
}

// claimPost claims the post due earliest: one queued and due, one whose
// lease expired, or one with offers not yet handled.
func (s *Store) claimPost(ctx context.Context, now time.Time, ttl time.Duration) (*service.Job, error) {
	q := kinds[service.KindPost]
	return claimFirst(func() ([]string, error) { return s.postCandidates(ctx, now) },
		func(key string) (*service.Job, bool, error) { return s.claimPostKey(ctx, q, key, now, ttl) })
}

// postCandidates returns the keys of a few posts that may be due: queued
// and due, or with an expired lease, then with offers not yet handled.
func (s *Store) postCandidates(ctx context.Context, now time.Time) ([]string, error) {
	snaps, err := s.getAll(ctx,
		s.posts.Where("status", "==", string(service.TaskQueued)).Where("not_before_us", "<=", now.UnixMicro()).
			OrderBy("not_before_us", firestore.Asc).Limit(8),
		s.posts.Where("status", "==", string(service.TaskPosting)).Where("lease_expires_us", "<=", now.UnixMicro()).Limit(8))
	if err != nil {
		return nil, err
	}
	var keys []string
	seen := map[string]bool{}
	for _, snap := range snaps {
		keys, seen[snap.Ref.ID] = append(keys, snap.Ref.ID), true
	}
	offered, err := s.offers.Where("handled", "==", false).OrderBy("at_us", firestore.Asc).Limit(64).Documents(ctx).GetAll()
	if err != nil {
		return nil, mapError(err)
	}
	for _, snap := range offered {
		if key, _ := snap.Data()["key"].(string); key != "" && !seen[key] {
			keys, seen[key] = append(keys, key), true
		}
	}
	return keys, nil
}

// claimPostKey claims post key if it is due once its offers are folded in;
// otherwise it records the folded offers (if it could take the claim) and
// returns no job. taken reports that another replica holds the post.
func (s *Store) claimPostKey(ctx context.Context, q *kind, key string, now time.Time, ttl time.Duration) (_ *service.Job, taken bool, _ error) {
	ref := s.posts.Doc(key)
	snap, err := ref.Get(ctx)
	if err != nil && status.Code(err) != codes.NotFound {
		return nil, false, mapError(err)
	}
	var d map[string]any
	if snap != nil && snap.Exists() {
		d = snap.Data()
	}
	if d["status"] == string(service.TaskPosting) && intField(d, "lease_expires_us") > now.UnixMicro() {
		return nil, true, nil // in flight: its holder folds the offers when it completes
	}
	claims := int(intField(d, "claims"))
	lease := &service.Lease{Kind: service.KindPost, ID: key, Token: service.NewID(), Expires: now.Add(ttl).UTC()}
	n, err := s.takeClaim(ctx, q, lease, claims, now)
	if err != nil || n == 0 {
		return nil, n == 0 && err == nil, err
	}
	var job *service.Job
	err = s.write("claim:post:item", func() error {
		return s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			job = nil
			snap, err := tx.Get(ref)
			exists := err == nil
			if err != nil && status.Code(err) != codes.NotFound {
				return err
			}
			var pd postDoc
			var t *service.PostTask
			if exists {
				if err := snap.DataTo(&pd); err != nil {
					return err
				}
				t = pd.task(key)
			}
			if pd.Claims != claims {
				return errTaken
			}
			offers, err := s.pendingOffers(tx, key)
			if err != nil {
				return err
			}
			t = foldOffers(t, key, offers)
			if t == nil { // nothing to post after all
				return nil
			}
			wasPosting := t.Status == service.TaskPosting
			due := t.Status == service.TaskQueued && !t.NextAt.After(now) || wasPosting && pd.LeaseExpires <= now.UnixMicro()
			if !due {
				if err := s.putPostTask(tx, ref, t); err != nil {
					return err
				}
				if err := tx.Update(ref, []firestore.Update{{Path: "claims", Value: n}}); err != nil {
					return err
				}
				return markHandled(tx, offers)
			}
			t.Interrupted = service.PostedGrade{}
			if wasPosting {
				t.Interrupted = t.InFlight
			}
			t.Status, t.Attempts, t.InFlight, t.NextAt = service.TaskPosting, t.Attempts+1, t.Want, time.Time{}
			if err := s.putPostTask(tx, ref, t); err != nil {
				return err
			}
			if err := tx.Update(ref, []firestore.Update{
				{Path: "claims", Value: n}, {Path: "lease_token", Value: lease.Token},
				{Path: "lease_expires_us", Value: lease.Expires.UnixMicro()}, {Path: "claimed_at", Value: now.UTC()},
			}); err != nil {
				return err
			}
			job = &service.Job{Lease: lease, Post: t}
			return markHandled(tx, offers)
		})
	})
	if errors.Is(err, errTaken) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, mapError(err)
	}
	return job, false, nil
}

// PostTask implements service.Store.
func (s *Store) PostTask(ctx context.Context, a service.Assignment, user string) (*service.PostTask, error) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	key := service.PostKey(a, user)
	// The offers first: a holder that folds them writes the post before
	// marking them handled, so an offer read here as handled is in the
	// post read after it, even where a commit's writes are not seen at once.
	snaps, err := s.offers.Where("key", "==", key).Where("handled", "==", false).Documents(ctx).GetAll()
	if err != nil {
		return nil, mapError(err)
	}
	offers, err := toOffers(snaps)
	if err != nil {
		return nil, err
	}
	snap, err := s.posts.Doc(key).Get(ctx)
	var t *service.PostTask
	switch {
	case status.Code(err) == codes.NotFound:
	case err != nil:
		return nil, mapError(err)
	default:
		var d postDoc
		if err := snap.DataTo(&d); err != nil {
			return nil, err
		}
		t = d.task(key)
	}
	if t = foldOffers(t, key, offers); t == nil {
		return nil, service.Errorf(service.ENOTFOUND, "There is no post of %s's grade for %s.", user, a.Assignment)
	}
	return t, nil
}

// migratePosts moves the posts of a version that posted per submission
// (post_status "pending" with a post_next_us, on the submission) to offers
// to the students' posts, as if just graded (the newest received wins),
// clearing the submission's post_next_us in the same transaction.
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
				return tx.Set(s.offers.Doc(snap.Ref.ID), offerDoc{
					Key:  service.PostKey(service.Assignment{Course: d.Course, Section: d.Section, Assignment: d.Assignment}, d.User),
					User: d.User, Course: d.Course, Section: d.Section, Assignment: d.Assignment,
					Grade: *d.Grade, Received: d.Received, At: finished.UnixMicro(), Policy: string(service.PostLatest),
				})
			})
			if err != nil {
				return n, mapError(err)
			}
			n++
		}
	}
}
