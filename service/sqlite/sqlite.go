// Package sqlite is the embedded Store: a single SQLite database file (through
// modernc.org/sqlite, which needs no cgo) that survives restarts and crashes.
//
// Writes go through one connection. New submissions are group-committed: the
// submissions that arrive while a commit is in flight are written together in
// the next transaction, so every accepted submission is on disk
// (synchronous=FULL) before it is acknowledged, without paying for one disk
// flush per request. Notebooks, hundreds of kilobytes each, are not written
// into the database but appended to segment files beside it (blobs.go): the
// disk's bandwidth bounds the accept path, and SQLite would write each one
// twice (log, then database).
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/otter-service/otter-service/service"
)

// Store implements service.Store on SQLite.
type Store struct {
	w     *sql.DB // one connection: every write
	r     *sql.DB // readers
	blobs *blobLog

	creates chan *createReq
	flushed chan []*createReq // from groupCommit to commitRows
	quit    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

var _ service.Store = (*Store)(nil)

// maxBatch bounds how many submissions one group commit writes.
const maxBatch = 128

// segmentSize is the size at which notebook segment files are rotated.
const segmentSize = 1 << 30

const schema = `
CREATE TABLE IF NOT EXISTS submissions (
	seq           INTEGER PRIMARY KEY,
	id            TEXT NOT NULL UNIQUE,
	user          TEXT NOT NULL,
	course        TEXT NOT NULL,
	section       TEXT NOT NULL,
	assignment    TEXT NOT NULL,
	status        TEXT NOT NULL,
	received_at   INTEGER NOT NULL,
	started_at    INTEGER,
	finished_at   INTEGER,
	attempts      INTEGER NOT NULL DEFAULT 0,
	lease_token   TEXT,
	lease_expires INTEGER,
	grade         REAL,
	questions     TEXT,
	failure_code  TEXT,
	failure_msg   TEXT,
	post_status   TEXT,
	post_attempts INTEGER NOT NULL DEFAULT 0,
	post_error    TEXT,
	post_next_at  INTEGER,
	posted_at     INTEGER,
	post_token    TEXT,
	not_before    INTEGER,
	notebook_name TEXT,
	feedback      TEXT
);
CREATE INDEX IF NOT EXISTS submissions_queued ON submissions(seq) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS submissions_leased ON submissions(lease_expires) WHERE status = 'grading';
CREATE TABLE IF NOT EXISTS notebooks (
	id      TEXT PRIMARY KEY,
	segment INTEGER NOT NULL,
	offset  INTEGER NOT NULL,
	length  INTEGER NOT NULL,
	crc32   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS grades (
	submission_id TEXT PRIMARY KEY,
	user          TEXT NOT NULL,
	grade         REAL NOT NULL,
	course        TEXT NOT NULL,
	section       TEXT NOT NULL,
	assignment    TEXT NOT NULL,
	timestamp     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS grades_user ON grades(user, course, section, assignment);
CREATE TABLE IF NOT EXISTS logs (
	seq           INTEGER PRIMARY KEY,
	submission_id TEXT NOT NULL,
	user          TEXT NOT NULL,
	course        TEXT NOT NULL,
	section       TEXT NOT NULL,
	assignment    TEXT NOT NULL,
	message       TEXT NOT NULL,
	trace         TEXT NOT NULL,
	type          TEXT NOT NULL,
	timestamp     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_submission ON logs(submission_id, seq);
CREATE TABLE IF NOT EXISTS held (
	key           TEXT PRIMARY KEY,
	body          BLOB NOT NULL,
	expires       INTEGER NOT NULL,
	notebook_name TEXT
);
`

// Open opens (creating if needed) the database at path.
func Open(path string) (*Store, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if _, err := w.Exec(`PRAGMA journal_mode = WAL`); err != nil {
		w.Close()
		return nil, fmt.Errorf("setting up %s: %w", path, err)
	}
	if _, err := w.Exec(schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("creating the schema in %s: %w", path, err)
	}
	if err := migrate(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("updating the schema in %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	blobs, err := openBlobLog(path+".notebooks", segmentSize)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("opening the notebooks of %s: %w", path, err)
	}
	s := &Store{w: w, r: r, blobs: blobs, creates: make(chan *createReq), flushed: make(chan []*createReq, 1), quit: make(chan struct{})}
	s.wg.Add(2)
	go s.groupCommit()
	go s.commitRows()
	return s, nil
}

// Close implements service.Store.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.quit) })
	s.wg.Wait()
	return errors.Join(s.w.Close(), s.r.Close(), s.blobs.close())
}

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
		err := s.insert(batch)
		if err != nil && len(batch) > 1 {
			// Do not let one bad submission fail the others.
			for _, r := range batch {
				r.err <- s.insert([]*createReq{r})
			}
			continue
		}
		for _, r := range batch {
			r.err <- err
		}
	}
}

func (s *Store) insert(batch []*createReq) error {
	return mapError(s.tx(context.Background(), func(tx *sql.Tx) error {
		for _, r := range batch {
			sub := r.sub
			_, err := tx.Exec(`INSERT INTO submissions (id, user, course, section, assignment, status, received_at, notebook_name)
				VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)`,
				sub.ID, sub.User, sub.Course, sub.Section, sub.Assignment.Assignment, sub.ReceivedAt.UnixNano(), sub.NotebookName)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO notebooks (id, segment, offset, length, crc32) VALUES (?, ?, ?, ?, ?)`,
				sub.ID, r.ref.seg, r.ref.off, r.ref.length, r.ref.crc); err != nil {
				return err
			}
		}
		return nil
	}))
}

// migrate brings a database made by an earlier version up to the schema.
func migrate(db *sql.DB) error {
	if err := addColumns(db, "submissions", "post_status TEXT", "post_attempts INTEGER NOT NULL DEFAULT 0", "post_error TEXT",
		"post_next_at INTEGER", "posted_at INTEGER", "post_token TEXT", "not_before INTEGER", "notebook_name TEXT", "feedback TEXT"); err != nil {
		return err
	}
	if err := addColumns(db, "held", "notebook_name TEXT"); err != nil {
		return err
	}
	_, err := db.Exec(`CREATE INDEX IF NOT EXISTS submissions_post_due ON submissions(post_next_at) WHERE post_status = 'pending';
		CREATE INDEX IF NOT EXISTS submissions_user_active ON submissions(user) WHERE status IN ('queued', 'grading')`)
	return err
}

// addColumns adds to table those of the columns (name and type) it lacks.
func addColumns(db *sql.DB, table string, columns ...string) error {
	have := map[string]bool{}
	rows, err := db.Query(`SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, col := range columns {
		name, _, _ := strings.Cut(col, " ")
		if !have[name] {
			if _, err := db.Exec(`ALTER TABLE ` + table + ` ADD COLUMN ` + col); err != nil {
				return err
			}
		}
	}
	return nil
}

const submissionColumns = `id, user, course, section, assignment, status, received_at, started_at,
	finished_at, attempts, grade, questions, failure_code, failure_msg,
	post_status, post_attempts, post_error, post_next_at, posted_at, notebook_name, feedback`

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
	)
	err := row.Scan(&sub.ID, &sub.User, &sub.Course, &sub.Section, &sub.Assignment.Assignment, &sub.Status,
		&received, &started, &finished, &sub.Attempts, &grade, &questions, &fcode, &fmessage,
		&pstatus, &sub.Post.Attempts, &perror, &pnext, &posted, &notebookName, &feedback)
	if err != nil {
		return nil, err
	}
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
	return sub, mapError(err)
}

// Notebook implements service.Store.
func (s *Store) Notebook(ctx context.Context, id string) ([]byte, error) {
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
		WHERE status = 'queued' AND seq <= (SELECT seq FROM submissions WHERE id = ? AND status = 'queued')`, id).Scan(&n)
	if err != nil {
		return 0, mapError(err)
	}
	if n == 0 {
		return 0, service.Errorf(service.ENOTFOUND, "Submission %q is not queued.", id)
	}
	return n, nil
}

// Claim implements service.Store.
func (s *Store) Claim(ctx context.Context, now time.Time, ttl time.Duration) (*service.Submission, *service.Lease, error) {
	var sub *service.Submission
	lease := &service.Lease{Token: service.NewID(), Expires: now.Add(ttl).UTC()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// The oldest of: the first queued submission, and the first whose
		// lease expired.
		row := tx.QueryRow(`SELECT id FROM (
				SELECT id, seq FROM (SELECT id, seq FROM submissions WHERE status = 'queued' AND (not_before IS NULL OR not_before <= ?) ORDER BY seq LIMIT 1)
				UNION ALL
				SELECT id, seq FROM (SELECT id, seq FROM submissions WHERE status = 'grading' AND lease_expires <= ? ORDER BY lease_expires LIMIT 1)
			) ORDER BY seq LIMIT 1`, now.UnixNano(), now.UnixNano())
		var id string
		if err := row.Scan(&id); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			return err
		}
		var err error
		sub, err = scanSubmission(tx.QueryRow(`UPDATE submissions
			SET status = 'grading', lease_token = ?, lease_expires = ?, attempts = attempts + 1, started_at = ?
			WHERE id = ? RETURNING `+submissionColumns,
			lease.Token, lease.Expires.UnixNano(), now.UnixNano(), id))
		return err
	})
	if err != nil || sub == nil {
		return nil, nil, mapError(err)
	}
	return sub, lease, nil
}

// ExtendLease implements service.Store.
func (s *Store) ExtendLease(ctx context.Context, id string, l *service.Lease, now time.Time, ttl time.Duration) error {
	expires := now.Add(ttl).UTC()
	err := s.exec1(ctx, `UPDATE submissions SET lease_expires = ? WHERE id = ? AND lease_token = ? AND status = 'grading'`,
		expires.UnixNano(), id, l.Token)
	if err == nil {
		l.Expires = expires
	}
	return err
}

// Release implements service.Store.
func (s *Store) Release(ctx context.Context, id string, l *service.Lease, notBefore time.Time) error {
	var nb any
	if !notBefore.IsZero() {
		nb = notBefore.UnixNano()
	}
	return s.exec1(ctx, `UPDATE submissions
		SET status = 'queued', lease_token = NULL, lease_expires = NULL, attempts = MAX(attempts - 1, 0), not_before = ?
		WHERE id = ? AND lease_token = ? AND status = 'grading'`, nb, id, l.Token)
}

// Finish implements service.Store.
func (s *Store) Finish(ctx context.Context, id string, l *service.Lease, out service.Outcome) error {
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
	var grade, post, postDue any
	if scored {
		grade = out.Grade
	}
	if out.Status == service.StatusGraded {
		post = string(out.Post)
		if out.Post == service.PostPending {
			postDue = out.FinishedAt.UnixNano()
		}
	}
	return mapError(s.tx(ctx, func(tx *sql.Tx) error {
		// The lease token stays on a finished submission, so a retried
		// Finish by the same holder matches again and changes nothing new.
		var sub service.Submission
		var finished sql.NullInt64
		err := tx.QueryRow(`UPDATE submissions
			SET status = ?, grade = ?, questions = ?, feedback = ?, failure_code = ?, failure_msg = ?, lease_expires = NULL,
				finished_at = COALESCE(finished_at, ?), post_status = COALESCE(post_status, ?), post_next_at = COALESCE(post_next_at, ?)
			WHERE id = ? AND lease_token = ? AND status IN ('grading', ?)
			RETURNING user, course, section, assignment, finished_at`,
			out.Status, grade, nullable(questions), nullable(feedback), fcode, fmsg, out.FinishedAt.UnixNano(), post, postDue, id, l.Token, out.Status).
			Scan(&sub.User, &sub.Course, &sub.Section, &sub.Assignment.Assignment, &finished)
		if errors.Is(err, sql.ErrNoRows) {
			return service.Errorf(service.ECONFLICT, "Submission %q is no longer held by this worker.", id)
		}
		if err != nil || out.Status != service.StatusGraded {
			return err
		}
		_, err = tx.Exec(`INSERT INTO grades (submission_id, user, grade, course, section, assignment, timestamp)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (submission_id) DO UPDATE SET grade = excluded.grade`,
			id, sub.User, out.Grade, sub.Course, sub.Section, sub.Assignment.Assignment, finished.Int64)
		return err
	}))
}

// ClaimPost implements service.Store.
func (s *Store) ClaimPost(ctx context.Context, now time.Time, ttl time.Duration) (*service.Submission, *service.Lease, error) {
	var sub *service.Submission
	lease := &service.Lease{Token: service.NewID(), Expires: now.Add(ttl).UTC()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id string
		err := tx.QueryRow(`SELECT id FROM submissions WHERE post_status = 'pending' AND post_next_at <= ?
			ORDER BY post_next_at LIMIT 1`, now.UnixNano()).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		// The lease's expiry is also when the post is due again, should
		// this attempt never finish.
		sub, err = scanSubmission(tx.QueryRow(`UPDATE submissions
			SET post_token = ?, post_next_at = ?, post_attempts = post_attempts + 1
			WHERE id = ? RETURNING `+submissionColumns, lease.Token, lease.Expires.UnixNano(), id))
		return err
	})
	if err != nil || sub == nil {
		return nil, nil, mapError(err)
	}
	return sub, lease, nil
}

// FinishPost implements service.Store.
func (s *Store) FinishPost(ctx context.Context, id string, l *service.Lease, p service.Post) error {
	var next, posted any
	if p.Status == service.PostPending {
		next = p.NextAt.UnixNano()
	}
	if p.Status == service.PostPosted {
		posted = p.PostedAt.UnixNano()
	}
	err := s.exec1(ctx, `UPDATE submissions SET post_status = ?, post_error = ?, post_next_at = ?, posted_at = ?
		WHERE id = ? AND post_token = ? AND post_status = 'pending'`, string(p.Status), p.LastError, next, posted, id, l.Token)
	if service.ErrorCode(err) == service.ECONFLICT {
		return service.Errorf(service.ECONFLICT, "The post of submission %q is no longer held by this worker.", id)
	}
	return err
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
	_, err := s.w.ExecContext(ctx, `INSERT INTO logs (submission_id, user, course, section, assignment, message, trace, type, timestamp)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.SubmissionID, e.User, e.Course, e.Section, e.Assignment.Assignment, e.Message, e.Trace, e.Type, e.Timestamp.UnixNano())
	return mapError(err)
}

// Logs implements service.Store.
func (s *Store) Logs(ctx context.Context, submissionID string) ([]service.LogEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT submission_id, user, course, section, assignment, message, trace, type, timestamp
		FROM logs WHERE submission_id = ? ORDER BY seq`, submissionID)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []service.LogEntry
	for rows.Next() {
		var e service.LogEntry
		var ts int64
		if err := rows.Scan(&e.SubmissionID, &e.User, &e.Course, &e.Section, &e.Assignment.Assignment, &e.Message, &e.Trace, &e.Type, &ts); err != nil {
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
		(SELECT count(*) FROM submissions WHERE post_status = 'pending')`).Scan(&c.Queued, &c.Grading, &c.PostsPending)
	return c, mapError(err)
}

// InFlight implements service.Store.
func (s *Store) InFlight(ctx context.Context, user string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM submissions WHERE user = ? AND status IN ('queued', 'grading')`, user).Scan(&n)
	return n, mapError(err)
}

// Hold implements service.Store.
func (s *Store) Hold(ctx context.Context, key string, h service.HeldSubmission, expires time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO held (key, body, expires, notebook_name) VALUES (?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET body = excluded.body, expires = excluded.expires, notebook_name = excluded.notebook_name`,
		key, h.Body, expires.UnixNano(), h.NotebookName)
	return mapError(err)
}

// Held implements service.Store.
func (s *Store) Held(ctx context.Context, key string, now time.Time) (service.HeldSubmission, error) {
	var h service.HeldSubmission
	var name sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT body, notebook_name FROM held WHERE key = ? AND expires > ?`, key, now.UnixNano()).Scan(&h.Body, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return h, service.Errorf(service.ENOTFOUND, "Nothing is held under this key.")
	}
	h.NotebookName = name.String
	return h, mapError(err)
}

// DropHeld implements service.Store.
func (s *Store) DropHeld(ctx context.Context, key string, now time.Time) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM held WHERE key = ? OR expires <= ?`, key, now.UnixNano())
	return mapError(err)
}

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// exec1 runs a write that must change exactly one row; ECONFLICT otherwise.
func (s *Store) exec1(ctx context.Context, query string, args ...any) error {
	res, err := s.w.ExecContext(ctx, query, args...)
	if err != nil {
		return mapError(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return service.Errorf(service.ECONFLICT, "The submission is no longer held by this worker.")
	}
	return nil
}

func nullable(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// mapError turns SQLite's errors into the service's.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var se *service.Error
	if errors.As(err, &se) {
		return err
	}
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return &service.Error{Code: service.ECONFLICT, Message: "A submission with this id already exists."}
		}
		switch e.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
			return fmt.Errorf("%w (%v)", service.Errorf(service.EUNAVAILABLE, "The grading service cannot store submissions right now; please try again in a few minutes."), err)
		}
	}
	return fmt.Errorf("sqlite: %w", err)
}
