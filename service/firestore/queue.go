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

// The work queue (service/queue.go): one lease protocol over two
// collections, submissions (KindGrade, one document per submission) and
// posts (KindPost, one per student and assignment; see posts.go for how
// grades reach them), whose documents share the fields status, claims,
// attempts, lease_token, lease_expires_us and not_before_us.
//
// A claim is two writes. First the lease document of the item's next claim
// number ({ENVIRONMENT}-leases/{id}-{n} for gradings, post-{key}-{n} for
// posts) is created: Firestore lets exactly one create succeed, so two
// replicas never hold the same claim, even where an emulator does not
// isolate transactions. Then the item's document is updated to point to it.
// If the second write never happens (the process died, the write failed,
// or its answer was lost), the lease document is one the item does not
// point to; once its own expiry passes, the next claimer skips it and
// creates the next number, so the item is claimed again within one lease.
// A create whose answer was lost is retried with the same token, and a
// lease document found with the claimer's own token is the claimer's.

// kind is how the queue finds one kind of work.
type kind struct {
	name               service.Kind
	coll               func(*Store) *firestore.CollectionRef
	available, running string
	leaseID            func(id string, n int) string
	// candidates returns, in the order to try them, a few due items.
	candidates func(s *Store, ctx context.Context, now time.Time) ([]*firestore.DocumentSnapshot, error)
	// onClaim are the kind's own updates made by a claim, from the item's
	// fields as they were.
	onClaim func(d map[string]any, now time.Time) []firestore.Update
}

var kinds = map[service.Kind]*kind{
	service.KindGrade: {
		name: service.KindGrade, coll: func(s *Store) *firestore.CollectionRef { return s.submissions },
		available: string(service.StatusQueued), running: string(service.StatusGrading),
		leaseID: func(id string, n int) string { return fmt.Sprintf("%s-%d", id, n) },
		candidates: func(s *Store, ctx context.Context, now time.Time) ([]*firestore.DocumentSnapshot, error) {
			snaps, err := s.getAll(ctx,
				// Due first (not_before_us 0 for all but released ones), then oldest.
				s.submissions.Where("status", "==", string(service.StatusQueued)).Where("not_before_us", "<=", now.UnixMicro()).
					OrderBy("not_before_us", firestore.Asc).OrderBy("received_us", firestore.Asc).Limit(8),
				s.submissions.Where("status", "==", string(service.StatusGrading)).Where("lease_expires_us", "<=", now.UnixMicro()).Limit(8))
			// In the queries' order, both: due time (an expired lease's
			// item keeps the not_before_us it was queued with), then
			// creation.
			sortBy(snaps, func(a, b *firestore.DocumentSnapshot) bool {
				da, db := a.Data(), b.Data()
				na, nb := intField(da, "not_before_us"), intField(db, "not_before_us")
				return na < nb || na == nb && intField(da, "received_us") < intField(db, "received_us")
			})
			return snaps, err
		},
		onClaim: func(_ map[string]any, now time.Time) []firestore.Update {
			return []firestore.Update{{Path: "started_at", Value: now.UTC()}}
		},
	},
	service.KindPost: {
		// Claimed by claimPost (posts.go), which shares the lease documents.
		name: service.KindPost, coll: func(s *Store) *firestore.CollectionRef { return s.posts },
		available: string(service.TaskQueued), running: string(service.TaskPosting),
		leaseID: func(id string, n int) string { return fmt.Sprintf("post-%s-%d", id, n) },
	},
}

func kindOf(k service.Kind) (*kind, error) {
	q, ok := kinds[k]
	if !ok {
		return nil, fmt.Errorf("firestore: no work of kind %q", k)
	}
	return q, nil
}

// getAll runs the queries and returns their documents, each once.
func (s *Store) getAll(ctx context.Context, qs ...firestore.Query) ([]*firestore.DocumentSnapshot, error) {
	var out []*firestore.DocumentSnapshot
	seen := map[string]bool{}
	for _, q := range qs {
		snaps, err := q.Documents(ctx).GetAll()
		if err != nil {
			return nil, mapError(err)
		}
		for _, snap := range snaps {
			if !seen[snap.Ref.ID] {
				seen[snap.Ref.ID] = true
				out = append(out, snap)
			}
		}
	}
	return out, nil
}

func intField(d map[string]any, name string) int64 {
	switch v := d[name].(type) {
	case int64:
		return v
	case float64: // emulators may hold integers as doubles
		return int64(v)
	}
	return 0
}

// Claim implements service.Store.
func (s *Store) Claim(ctx context.Context, k service.Kind, now time.Time, ttl time.Duration) (*service.Job, error) {
	q, err := kindOf(k)
	if err != nil {
		return nil, err
	}
	if k == service.KindPost && !s.postsMigrated.Load() {
		if _, err := s.migratePosts(ctx); err != nil {
			return nil, fmt.Errorf("moving the pending posts of an earlier version: %w", err)
		}
		s.postsMigrated.Store(true)
	}
	if k == service.KindPost {
		return s.claimPost(ctx, now, ttl)
	}
	return claimFirst(func() ([]*firestore.DocumentSnapshot, error) { return q.candidates(s, ctx, now) },
		func(c *firestore.DocumentSnapshot) (*service.Job, bool, error) {
			return s.claimOne(ctx, q, c, now, ttl)
		})
}

// claimFirst tries the candidates find returns, in order, until try claims
// one; when there were some but other replicas took them all, it looks
// again, a few rounds at most. try reports taken for a candidate another
// replica holds.
func claimFirst[C any](find func() ([]C, error), try func(C) (job *service.Job, taken bool, err error)) (*service.Job, error) {
	for round := 0; round < 20; round++ {
		cands, err := find()
		if err != nil {
			return nil, err
		}
		lost := false
		for _, c := range cands {
			job, taken, err := try(c)
			if err != nil || job != nil {
				return job, err
			}
			lost = lost || taken
		}
		if !lost {
			return nil, nil
		}
	}
	return nil, nil
}

// maxOrphans bounds how many lease documents of abandoned claims a claimer
// steps over: each is one claim that failed half-way within one lease.
const maxOrphans = 5

// claimOne tries to claim the item c. taken reports that another replica
// holds it.
func (s *Store) claimOne(ctx context.Context, q *kind, c *firestore.DocumentSnapshot, now time.Time, ttl time.Duration) (_ *service.Job, taken bool, _ error) {
	d := c.Data()
	claims := int(intField(d, "claims"))
	lease := &service.Lease{Kind: q.name, ID: c.Ref.ID, Token: service.NewID(), Expires: now.Add(ttl).UTC()}
	n, err := s.takeClaim(ctx, q, lease, claims, now)
	if err != nil || n == 0 {
		return nil, n == 0 && err == nil, err
	}
	// Point the item to its claim, if it is as we saw it.
	var out *service.Job
	err = s.write("claim:"+string(q.name)+":item", func() error {
		return s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			snap, err := tx.Get(c.Ref)
			if err != nil {
				return err
			}
			cur := snap.Data()
			st, _ := cur["status"].(string)
			due := st == q.available && intField(cur, "not_before_us") <= now.UnixMicro() ||
				st == q.running && intField(cur, "lease_expires_us") <= now.UnixMicro()
			if int(intField(cur, "claims")) != claims || !due {
				return errTaken
			}
			updates := append(q.onClaim(cur, now),
				firestore.Update{Path: "status", Value: q.running},
				firestore.Update{Path: "claims", Value: n},
				firestore.Update{Path: "attempts", Value: intField(cur, "attempts") + 1},
				firestore.Update{Path: "lease_token", Value: lease.Token},
				firestore.Update{Path: "lease_expires_us", Value: lease.Expires.UnixMicro()})
			if err := tx.Update(c.Ref, updates); err != nil {
				return err
			}
			out, err = s.claimed(q.name, snap, lease, now)
			return err
		})
	})
	if errors.Is(err, errTaken) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, mapError(err)
	}
	return out, false, nil
}

var errTaken = fmt.Errorf("firestore: the item was claimed meanwhile")

// takeClaim creates the lease document of the item's next claim number
// after claims for lease, stepping over those of abandoned claims, and
// returns the number; 0 when another replica holds the claim.
func (s *Store) takeClaim(ctx context.Context, q *kind, lease *service.Lease, claims int, now time.Time) (int, error) {
	for k := claims + 1; k <= claims+maxOrphans; k++ {
		ref := s.leases.Doc(q.leaseID(lease.ID, k))
		switch owner, err := s.createLease(ctx, q, ref, lease, k, now); {
		case err != nil:
			return 0, err
		case owner == lease.Token:
			return k, nil
		case owner != "":
			return 0, nil // another replica holds this claim
		}
		// else: an abandoned claim's; try the next number
	}
	return 0, nil
}

// createLease creates the lease document ref of claim number n for lease,
// and returns the token of the claim that owns it: lease.Token when this
// create made it (or an earlier one of this claim whose answer was lost),
// another's when another replica holds it, or "" when it is an abandoned
// claim's, whose lease expired before its item pointed to it.
func (s *Store) createLease(ctx context.Context, q *kind, ref *firestore.DocumentRef, lease *service.Lease, n int, now time.Time) (string, error) {
	var err error
	for try := 0; try < 3; try++ {
		err = s.write("claim:"+string(q.name)+":lease", func() error {
			_, err := ref.Create(ctx, map[string]any{
				"kind": string(q.name), "id": lease.ID, "claim": n, "token": lease.Token,
				"created": now.UTC(), "expires_us": lease.Expires.UnixMicro(),
			})
			return err
		})
		if err == nil {
			return lease.Token, nil
		}
		if status.Code(err) == codes.AlreadyExists {
			break
		}
		if service.ErrorCode(mapError(err)) != service.EUNAVAILABLE {
			return "", mapError(err)
		}
		// Unavailable: the create may have been applied; try again, and
		// recognise it by its token if it was.
	}
	if status.Code(err) != codes.AlreadyExists {
		return "", mapError(err)
	}
	snap, err := ref.Get(ctx)
	if err != nil {
		return "", mapError(err)
	}
	d := snap.Data()
	token, _ := d["token"].(string)
	expires := intField(d, "expires_us")
	if expires == 0 { // made by a version that did not record it: a minute's lease
		if created, ok := d["created"].(time.Time); ok {
			expires = created.Add(time.Minute).UnixMicro()
		}
	}
	if token != lease.Token && expires <= now.UnixMicro() {
		return "", nil
	}
	return token, nil
}

// claimed is the item of kind k claimed for lease, from its document as it
// was before the claim.
func (s *Store) claimed(k service.Kind, snap *firestore.DocumentSnapshot, lease *service.Lease, now time.Time) (*service.Job, error) {
	id := snap.Ref.ID
	if k == service.KindGrade {
		var d submissionDoc
		if err := snap.DataTo(&d); err != nil {
			return nil, fmt.Errorf("firestore: submission %s: %w", id, err)
		}
		sub := d.submission(id)
		sub.Status, sub.Attempts, sub.StartedAt = service.StatusGrading, d.Attempts+1, now.UTC()
		return &service.Job{Lease: lease, Submission: sub}, nil
	}
	return nil, fmt.Errorf("firestore: a %s is claimed by claimPost", k)
}

// held runs fn in a transaction on the item l leases, if l is its current
// lease and its status is one of statuses (the kind's running status if
// none are given).
func (s *Store) held(ctx context.Context, op string, l *service.Lease, statuses []string,
	fn func(tx *firestore.Transaction, ref *firestore.DocumentRef, snap *firestore.DocumentSnapshot) error) error {
	q, err := kindOf(l.Kind)
	if err != nil {
		return err
	}
	if len(statuses) == 0 {
		statuses = []string{q.running}
	}
	ref := q.coll(s).Doc(l.ID)
	return mapError(s.write(op, func() error {
		return s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			snap, err := tx.Get(ref)
			if status.Code(err) == codes.NotFound {
				return service.Errorf(service.ECONFLICT, "The %s of %q is no longer held by this worker.", l.Kind, l.ID)
			}
			if err != nil {
				return err
			}
			d := snap.Data()
			ok := false
			for _, st := range statuses {
				ok = ok || d["status"] == st
			}
			if d["lease_token"] != l.Token || !ok {
				return service.Errorf(service.ECONFLICT, "The %s of %q is no longer held by this worker.", l.Kind, l.ID)
			}
			return fn(tx, ref, snap)
		})
	}))
}

// Extend implements service.Store.
func (s *Store) Extend(ctx context.Context, l *service.Lease, now time.Time, ttl time.Duration) error {
	expires := now.Add(ttl).UTC()
	err := s.held(ctx, "extend", l, nil, func(tx *firestore.Transaction, ref *firestore.DocumentRef, _ *firestore.DocumentSnapshot) error {
		return tx.Update(ref, []firestore.Update{{Path: "lease_expires_us", Value: expires.UnixMicro()}})
	})
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
	var nb int64
	if !notBefore.IsZero() {
		nb = notBefore.UnixMicro()
	}
	return s.held(ctx, "release", l, nil, func(tx *firestore.Transaction, ref *firestore.DocumentRef, snap *firestore.DocumentSnapshot) error {
		updates := []firestore.Update{
			{Path: "status", Value: q.available},
			{Path: "attempts", Value: max(intField(snap.Data(), "attempts")-1, 0)},
			{Path: "lease_token", Value: ""},
			{Path: "lease_expires_us", Value: 0},
			{Path: "not_before_us", Value: nb},
		}
		if l.Kind == service.KindPost {
			updates = append(updates, firestore.Update{Path: "inflight", Value: nil})
		}
		return tx.Update(ref, updates)
	})
}

// Finish implements service.Store.
func (s *Store) Finish(ctx context.Context, l *service.Lease, out service.Outcome) error {
	if l.Kind != service.KindGrade {
		return fmt.Errorf("firestore: Finish of a %s lease", l.Kind)
	}
	id := l.ID
	statuses := []string{string(service.StatusGrading), string(out.Status)}
	return s.held(ctx, "finish", l, statuses, func(tx *firestore.Transaction, ref *firestore.DocumentRef, snap *firestore.DocumentSnapshot) error {
		var d submissionDoc
		if err := snap.DataTo(&d); err != nil {
			return err
		}
		finished := out.FinishedAt.UTC()
		if d.FinishedAt != nil {
			finished = d.FinishedAt.UTC() // a retried Finish changes nothing
		}
		updates := []firestore.Update{
			{Path: "status", Value: string(out.Status)},
			{Path: "finished_at", Value: finished},
			{Path: "lease_expires_us", Value: 0},
		}
		if out.Status == service.StatusGraded || out.Status == service.StatusNeedsReview {
			updates = append(updates,
				firestore.Update{Path: "grade", Value: out.Grade},
				firestore.Update{Path: "questions", Value: questionDocuments(out.Questions)},
				firestore.Update{Path: "feedback", Value: feedbackDocuments(out.Feedback)})
		}
		if out.Status == service.StatusGraded && d.PostStatus == "" { // a retried Finish leaves the post as it is
			updates = append(updates, firestore.Update{Path: "post_status", Value: string(out.Post)})
		}
		if out.Failure != nil {
			updates = append(updates, firestore.Update{Path: "failure_code", Value: out.Failure.Code}, firestore.Update{Path: "failure_message", Value: out.Failure.Message})
		}
		if err := tx.Update(ref, updates); err != nil {
			return err
		}
		if out.Status != service.StatusGraded {
			return nil
		}
		return s.recordGrade(tx, id, &d, out.Grade, finished, out)
	})
}

// recordGrade writes, in tx, the Grade record of submission id (d) with
// grade g at time at: keyed by the submission, so a retry or a regrade
// replaces it, never adds one. With out.Post PostPending it offers g to the
// student's post: its own document, so that no write of the post races with
// the post's lease holder (see posts.go). Set replaces the whole offer,
// handled false, so a regrade's offer is taken up again even after the
// first one was handled.
func (s *Store) recordGrade(tx *firestore.Transaction, id string, d *submissionDoc, g float64, at time.Time, out service.Outcome) error {
	if err := tx.Set(s.grades.Doc(id), map[string]any{
		"submission_id": id, "user": d.User, "grade": g, "course": d.Course,
		"section": d.Section, "assignment": d.Assignment, "timestamp": at,
	}); err != nil {
		return err
	}
	if out.Post != service.PostPending {
		return nil
	}
	return tx.Set(s.offers.Doc(id), offerDoc{
		Key:  service.PostKey(service.Assignment{Course: d.Course, Section: d.Section, Assignment: d.Assignment}, d.User),
		User: d.User, Course: d.Course, Section: d.Section, Assignment: d.Assignment,
		Grade: g, Received: d.Received, At: at.UnixMicro(), Policy: string(out.Policy),
	})
}

// FinishPost implements service.Store.
func (s *Store) FinishPost(ctx context.Context, l *service.Lease, r service.PostResult) error {
	if l.Kind != service.KindPost {
		return fmt.Errorf("firestore: FinishPost of a %s lease", l.Kind)
	}
	return s.held(ctx, "finish-post", l, nil, func(tx *firestore.Transaction, ref *firestore.DocumentRef, snap *firestore.DocumentSnapshot) error {
		var pd postDoc
		if err := snap.DataTo(&pd); err != nil {
			return err
		}
		t := pd.task(ref.ID)
		offers, err := s.pendingOffers(tx, ref.ID)
		if err != nil {
			return err
		}
		t = foldOffers(t, ref.ID, offers)
		after, sent := service.ApplyPostResult(*t, r)
		if err := s.putPostTask(tx, ref, &after); err != nil {
			return err
		}
		for _, m := range sent {
			if err := tx.Update(s.submissions.Doc(m.SubmissionID), []firestore.Update{
				{Path: "posted_at", Value: r.At.UTC()}, {Path: "post_confirmed", Value: m.Confirmed},
			}); err != nil {
				return err
			}
		}
		return markHandled(tx, offers)
	})
}
