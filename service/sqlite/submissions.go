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

// The submissions and their notebooks: the write pipeline of new ones, and
// the reads.

type createReq struct {
	sub      *service.Submission
	notebook []byte
	crc      uint32
	ref      blobRef // set by the group commit
	err      chan error
}

// CreateSubmission implements service.Store.
func (s *Store) CreateSubmission(ctx context.Context, sub *service.Submission, notebook []byte) error {
	req := &createReq{sub: sub, notebook: notebook, crc: checksum(notebook), err: make(chan error, 1)}
	select {
	case s.creates <- req:
	case <-s.quit:
		return service.Errorf(service.EUNAVAILABLE, "The service is shutting down; please submit again in a minute.")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once handed over, the write happens whatever ctx says; wait for it so
	// the caller never acknowledges a submission that is not on disk (and
	// keeps notebook's memory until it has been written).
	return <-req.err
}

// groupCommit is the first stage of the write pipeline: it gathers the
// submissions that arrived while the previous batch was being written, and
// writes their notebooks to disk with one write and one flush. The
// second stage, commitRows, commits their rows while this stage flushes the
// next batch.
func (s *Store) groupCommit() {
	defer s.wg.Done()
	defer close(s.flushed)
	for {
		var req *createReq
		select {
		case req = <-s.creates:
		case <-s.quit:
			return
		}
		batch := []*createReq{req}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-s.creates:
				batch = append(batch, r)
			default:
				break more
			}
		}
		if s.opts.inline { // variant B: no segment write; rows and notebooks in one transaction
			s.commitBatch(batch)
			continue
		}
		if err := s.writeNotebooks(batch); err != nil {
			for _, r := range batch {
				r.err <- err
			}
			continue
		}
		s.flushed <- batch
	}
}

// writeNotebooks appends the batch's notebooks to a segment and flushes it:
// once a row is committed, its notebook must be on disk.
func (s *Store) writeNotebooks(batch []*createReq) error {
	blobs := make([][]byte, len(batch))
	crcs := make([]uint32, len(batch))
	for i, r := range batch {
		blobs[i], crcs[i] = r.notebook, r.crc
	}
	refs, seg, err := s.blobs.appendBatch(blobs, crcs)
	if err != nil {
		return mapError(err)
	}
	if err := seg.f.Sync(); err != nil {
		return mapError(err)
	}
	for i, r := range batch {
		r.ref = refs[i]
	}
	return nil
}

// commitRows is the second stage of the write pipeline.
func (s *Store) commitRows() {
	defer s.wg.Done()
	for batch := range s.flushed {
		s.commitBatch(batch)
	}
}

// commitBatch commits the batch's rows in one transaction and answers its
// requests.
func (s *Store) commitBatch(batch []*createReq) {
	err := s.insert(batch)
	if err != nil && len(batch) > 1 {
		// Do not let one bad submission fail the others.
		for _, r := range batch {
			r.err <- s.insert([]*createReq{r})
		}
		return
	}
	for _, r := range batch {
		r.err <- err
	}
}

func (s *Store) insert(batch []*createReq) error {
	return mapError(s.tx(context.Background(), "create", func(tx *sql.Tx) error {
		for _, r := range batch {
			sub := r.sub
			_, err := tx.Exec(`INSERT INTO submissions (id, user, course, section, assignment, status, received_at, notebook_name)
				VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)`,
				sub.ID, sub.User, sub.Course, sub.Section, sub.Assignment.Assignment, sub.ReceivedAt.UnixNano(), sub.NotebookName)
			if err != nil {
				return err
			}
			if s.opts.inline {
				body := r.notebook
				if body == nil {
					body = []byte{}
				}
				if _, err := tx.Exec(`INSERT INTO notebook_bodies (id, body) VALUES (?, ?)`, sub.ID, body); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.Exec(`INSERT INTO notebooks (id, segment, offset, length, crc32) VALUES (?, ?, ?, ?, ?)`,
				sub.ID, r.ref.seg, r.ref.off, r.ref.length, r.ref.crc); err != nil {
				return err
			}
		}
		return nil
	}))
}

const submissionColumns = `id, user, course, section, assignment, status, received_at, started_at,
	finished_at, attempts, grade, questions, failure_code, failure_msg,
	post_status, post_attempts, post_error, post_next_at, posted_at, notebook_name, feedback, post_confirmed, batch`

func scanSubmission(row interface{ Scan(...any) error }) (*service.Submission, error) {
	var (
		sub                        service.Submission
		received                   int64
		started, finished          sql.NullInt64
		grade                      sql.NullFloat64
		questions, fcode, fmessage sql.NullString
		pstatus, perror            sql.NullString
		pnext, posted              sql.NullInt64
		notebookName, feedback     sql.NullString
		batch                      sql.NullString
	)
	err := row.Scan(&sub.ID, &sub.User, &sub.Course, &sub.Section, &sub.Assignment.Assignment, &sub.Status,
		&received, &started, &finished, &sub.Attempts, &grade, &questions, &fcode, &fmessage,
		&pstatus, &sub.Post.Attempts, &perror, &pnext, &posted, &notebookName, &feedback, &sub.Post.Confirmed, &batch)
	if err != nil {
		return nil, err
	}
	sub.Batch = batch.String
	sub.NotebookName = notebookName.String
	sub.Post.Status = service.PostStatus(pstatus.String)
	sub.Post.LastError = perror.String
	if pnext.Valid {
		sub.Post.NextAt = time.Unix(0, pnext.Int64).UTC()
	}
	if posted.Valid {
		sub.Post.PostedAt = time.Unix(0, posted.Int64).UTC()
	}
	sub.ReceivedAt = time.Unix(0, received).UTC()
	if started.Valid {
		sub.StartedAt = time.Unix(0, started.Int64).UTC()
	}
	if finished.Valid {
		sub.FinishedAt = time.Unix(0, finished.Int64).UTC()
	}
	sub.Grade = grade.Float64
	if questions.Valid && questions.String != "" {
		if err := json.Unmarshal([]byte(questions.String), &sub.Questions); err != nil {
			return nil, fmt.Errorf("submission %s: questions: %w", sub.ID, err)
		}
	}
	if feedback.Valid && feedback.String != "" { // NULL in rows from before it was kept
		if err := json.Unmarshal([]byte(feedback.String), &sub.Feedback); err != nil {
			return nil, fmt.Errorf("submission %s: feedback: %w", sub.ID, err)
		}
	}
	if fcode.Valid {
		sub.Failure = &service.Failure{Code: fcode.String, Message: fmessage.String}
	}
	return &sub, nil
}

// Submission implements service.Store.
func (s *Store) Submission(ctx context.Context, id string) (*service.Submission, error) {
	sub, err := scanSubmission(s.r.QueryRowContext(ctx, `SELECT `+submissionColumns+` FROM submissions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, service.Errorf(service.ENOTFOUND, "There is no submission %q.", id)
	}
	if err != nil {
		return nil, mapError(err)
	}
	if err := service.ViewPosts(ctx, []*service.Submission{sub}, s.PostTask); err != nil {
		return nil, err
	}
	return sub, nil
}

// Notebook implements service.Store.
func (s *Store) Notebook(ctx context.Context, id string) ([]byte, error) {
	if s.opts.inline {
		var nb []byte
		err := s.r.QueryRowContext(ctx, `SELECT body FROM notebook_bodies WHERE id = ?`, id).Scan(&nb)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, service.Errorf(service.ENOTFOUND, "There is no submission %q.", id)
		}
		return nb, mapError(err)
	}
	var ref blobRef
	err := s.r.QueryRowContext(ctx, `SELECT segment, offset, length, crc32 FROM notebooks WHERE id = ?`, id).
		Scan(&ref.seg, &ref.off, &ref.length, &ref.crc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, service.Errorf(service.ENOTFOUND, "There is no submission %q.", id)
	}
	if err != nil {
		return nil, mapError(err)
	}
	nb, err := s.blobs.read(ref)
	return nb, mapError(err)
}

// QueuePosition implements service.Store.
func (s *Store) QueuePosition(ctx context.Context, id string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM submissions
		WHERE status = 'queued' AND (COALESCE(not_before, 0), seq) <=
			(SELECT COALESCE(not_before, 0), seq FROM submissions WHERE id = ? AND status = 'queued')`, id).Scan(&n)
	if err != nil {
		return 0, mapError(err)
	}
	if n == 0 {
		return 0, service.Errorf(service.ENOTFOUND, "Submission %q is not queued.", id)
	}
	return n, nil
}

// Grades implements service.Store.
func (s *Store) Grades(ctx context.Context, f service.GradeFilter) ([]service.Grade, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT submission_id, user, grade, course, section, assignment, timestamp
		FROM grades
		WHERE (?1 = '' OR submission_id = ?1) AND (?2 = '' OR user = ?2) AND (?3 = '' OR course = ?3)
		  AND (?4 = '' OR section = ?4) AND (?5 = '' OR assignment = ?5)
		ORDER BY timestamp, submission_id`,
		f.SubmissionID, f.User, f.Course, f.Section, f.Assignment.Assignment)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []service.Grade
	for rows.Next() {
		var g service.Grade
		var ts int64
		if err := rows.Scan(&g.SubmissionID, &g.User, &g.Grade, &g.Course, &g.Section, &g.Assignment.Assignment, &ts); err != nil {
			return nil, mapError(err)
		}
		g.Timestamp = time.Unix(0, ts).UTC()
		out = append(out, g)
	}
	return out, mapError(rows.Err())
}

// AppendLog implements service.Store.
func (s *Store) AppendLog(ctx context.Context, e service.LogEntry) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO logs (submission_id, user, course, section, assignment, message, trace, type, timestamp, actor)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.SubmissionID, e.User, e.Course, e.Section, e.Assignment.Assignment, e.Message, e.Trace, e.Type, e.Timestamp.UnixNano(), e.Actor)
	return mapError(err)
}

// Logs implements service.Store.
func (s *Store) Logs(ctx context.Context, submissionID string) ([]service.LogEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+logColumns+` FROM logs WHERE submission_id = ? ORDER BY seq`, submissionID)
	return scanLogs(rows, err)
}

// Refusals implements service.Store.
func (s *Store) Refusals(ctx context.Context, user string, since time.Time, limit int) ([]service.LogEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+logColumns+`
		FROM logs WHERE submission_id = '' AND user = ? AND type = ? AND timestamp >= ? ORDER BY timestamp DESC, seq DESC LIMIT ?`,
		user, service.LogError, since.UnixNano(), limit)
	return scanLogs(rows, err)
}

// AuditLog implements service.Store.
func (s *Store) AuditLog(ctx context.Context, course string, since time.Time, limit int) ([]service.LogEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+logColumns+`
		FROM logs WHERE type = 'audit' AND course = ? AND timestamp >= ? ORDER BY timestamp DESC, seq DESC LIMIT ?`,
		course, since.UnixNano(), limit)
	return scanLogs(rows, err)
}

// logColumns are the columns scanLogs reads.
const logColumns = `submission_id, user, course, section, assignment, message, trace, type, timestamp, actor`

// scanLogs reads the log entries of a query of logColumns (err: the query's).
func scanLogs(rows *sql.Rows, err error) ([]service.LogEntry, error) {
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []service.LogEntry
	for rows.Next() {
		var e service.LogEntry
		var ts int64
		if err := rows.Scan(&e.SubmissionID, &e.User, &e.Course, &e.Section, &e.Assignment.Assignment, &e.Message, &e.Trace, &e.Type, &ts, &e.Actor); err != nil {
			return nil, mapError(err)
		}
		e.Timestamp = time.Unix(0, ts).UTC()
		out = append(out, e)
	}
	return out, mapError(rows.Err())
}

// Ping implements service.Store.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return mapError(err)
	}
	return mapError(s.w.PingContext(ctx))
}

// Counts implements service.Store.
func (s *Store) Counts(ctx context.Context) (service.Counts, error) {
	var c service.Counts
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM submissions WHERE status = 'queued'),
		(SELECT count(*) FROM submissions WHERE status = 'grading'),
		(SELECT count(*) FROM posts WHERE status IN ('queued', 'posting'))`).Scan(&c.Queued, &c.Grading, &c.PostsPending)
	return c, mapError(err)
}

// InFlight implements service.Store.
func (s *Store) InFlight(ctx context.Context, user string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM submissions WHERE user = ? AND status IN ('queued', 'grading') AND batch IS NULL`, user).Scan(&n)
	return n, mapError(err)
}
