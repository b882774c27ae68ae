package sqlite

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/otter-service/otter-service/service"
)

// ListSubmissions implements service.Store. Newest first is received_at
// descending, then seq (the order of creation) descending; the cursor is
// the last row's "received_at.seq".
func (s *Store) ListSubmissions(ctx context.Context, f service.SubmissionFilter) ([]*service.Submission, string, error) {
	var where []string
	var args []any
	for col, v := range map[string]string{"user": f.User, "course": f.Course, "section": f.Section,
		"assignment": f.Assignment, "status": string(f.Status), "batch": f.Batch} {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "received_at >= ?")
		args = append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where = append(where, "received_at < ?")
		args = append(args, f.Until.UnixNano())
	}
	if f.After != "" {
		at, seq, ok := parseCursor(f.After)
		if !ok {
			return nil, "", service.Errorf(service.EINVALID, "The page cursor %q is not one this service gave.", f.After)
		}
		where = append(where, "(received_at < ? OR (received_at = ? AND seq < ?))")
		args = append(args, at, at, seq)
	}
	q := `SELECT seq, ` + submissionColumns + ` FROM submissions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.PageLimit()
	q += " ORDER BY received_at DESC, seq DESC LIMIT ?"
	args = append(args, limit+1) // one more: is there a next page?
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", mapError(err)
	}
	defer rows.Close()
	var list []*service.Submission
	var seqs []int64
	for rows.Next() {
		var seq int64
		sub, err := scanSubmission(prefixed{rows, &seq})
		if err != nil {
			return nil, "", mapError(err)
		}
		sub.Questions, sub.Feedback = nil, nil
		list = append(list, sub)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, "", mapError(err)
	}
	rows.Close()
	next := ""
	if len(list) > limit {
		list, seqs = list[:limit], seqs[:limit]
		last := list[limit-1]
		next = fmt.Sprintf("%d.%d", last.ReceivedAt.UnixNano(), seqs[limit-1])
	}
	if err := service.ViewPosts(ctx, list, s.PostTask); err != nil {
		return nil, "", err
	}
	return list, next, nil
}

// prefixed scans a row whose first column is read into first, and the
// rest as the wrapped scanner's caller expects.
type prefixed struct {
	row   interface{ Scan(...any) error }
	first *int64
}

func (p prefixed) Scan(dest ...any) error {
	return p.row.Scan(append([]any{p.first}, dest...)...)
}

func parseCursor(c string) (at, seq int64, ok bool) {
	a, b, found := strings.Cut(c, ".")
	if !found {
		return 0, 0, false
	}
	at, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	return at, seq, err1 == nil && err2 == nil
}
