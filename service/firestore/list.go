package firestore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"cloud.google.com/go/firestore"
	"github.com/otter-service/otter-service/service"
)

// listFields are the fields of a submission document a list reads: all
// but the notebook, the questions and the feedback.
var listFields = []string{"user", "course", "section", "assignment", "notebook_chunks", "timestamp", "received_us",
	"status", "attempts", "started_at", "finished_at", "grade", "failure_code", "failure_message", "post_status",
	"post_attempts", "post_error", "post_next_us", "posted_at", "post_confirmed", "notebook_name", "batch"}

// ListSubmissions implements service.Store: equality filters with the
// order on received_us (then the document id), descending, which the
// composite indexes of deployment/firestore serve by merging one per
// filtered field. The cursor is the last document's received_us and the
// ids given at that time.
func (s *Store) ListSubmissions(ctx context.Context, f service.SubmissionFilter) ([]*service.Submission, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	q := s.submissions.Query
	for _, c := range []struct{ field, value string }{{"user", f.User}, {"course", f.Course}, {"section", f.Section},
		{"assignment", f.Assignment}, {"status", string(f.Status)}, {"batch", f.Batch}} {
		if c.value != "" {
			q = q.Where(c.field, "==", c.value)
		}
	}
	if !f.Since.IsZero() {
		q = q.Where("received_us", ">=", f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		q = q.Where("received_us", "<", f.Until.UnixMicro())
	}
	// A page starts at the last one's time, without the submissions of
	// that time it gave (ties): a cursor of one field, which every
	// Firestore serves alike.
	var given map[string]bool
	if f.After != "" {
		us, ids, ok := parseCursor(f.After)
		if !ok {
			return nil, "", service.Errorf(service.EINVALID, "The page cursor %q is not one this service gave.", f.After)
		}
		q = q.Where("received_us", "<=", us)
		given = map[string]bool{}
		for _, id := range ids {
			given[id] = true
		}
	}
	limit := f.PageLimit()
	snaps, err := q.OrderBy("received_us", firestore.Desc).Select(listFields...).Limit(limit + 1 + len(given)).Documents(ctx).GetAll()
	if err != nil {
		return nil, "", mapError(err)
	}
	var list []*service.Submission
	var received []int64
	for _, snap := range snaps {
		if given[snap.Ref.ID] {
			continue
		}
		var d submissionDoc
		if err := snap.DataTo(&d); err != nil {
			return nil, "", fmt.Errorf("firestore: submission %s: %w", snap.Ref.ID, err)
		}
		sub := d.submission(snap.Ref.ID)
		sub.Questions, sub.Feedback = nil, nil // in case a Firestore reads all fields despite Select
		list = append(list, sub)
		received = append(received, d.Received)
	}
	next := ""
	if len(list) > limit {
		list, received = list[:limit], received[:limit]
		last := received[limit-1]
		var ids []string
		for i := limit - 1; i >= 0 && received[i] == last; i-- {
			ids = append(ids, list[i].ID)
		}
		if f.After != "" && len(given) > 0 && last == cursorTime(f.After) {
			for id := range given { // still at the same time: those given before too
				ids = append(ids, id)
			}
		}
		next = fmt.Sprintf("%d.%s", last, strings.Join(ids, ","))
	}
	if err := service.ViewPosts(ctx, list, s.PostTask); err != nil {
		return nil, "", err
	}
	return list, next, nil
}

// parseCursor reads "received_us.id,id...".
func parseCursor(c string) (us int64, ids []string, ok bool) {
	a, b, found := strings.Cut(c, ".")
	if !found || b == "" {
		return 0, nil, false
	}
	us, err := strconv.ParseInt(a, 10, 64)
	return us, strings.Split(b, ","), err == nil
}

func cursorTime(c string) int64 {
	us, _, _ := parseCursor(c)
	return us
}
