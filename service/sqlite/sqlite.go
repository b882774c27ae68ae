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
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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
	opts  options

	creates chan *createReq
	flushed chan []*createReq // from groupCommit to commitRows
	quit    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	faults atomic.Pointer[func(op string, applied bool) error] // set by the tests only
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
	feedback      TEXT,
	post_confirmed INTEGER NOT NULL DEFAULT 0,
	batch         TEXT
);
CREATE INDEX IF NOT EXISTS submissions_leased ON submissions(lease_expires) WHERE status = 'grading';
CREATE INDEX IF NOT EXISTS submissions_received ON submissions(received_at, seq);
CREATE INDEX IF NOT EXISTS submissions_by_user ON submissions(user, received_at, seq);
CREATE INDEX IF NOT EXISTS submissions_by_assignment ON submissions(course, assignment, received_at, seq);
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
	timestamp     INTEGER NOT NULL,
	actor         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS logs_submission ON logs(submission_id, seq);
CREATE INDEX IF NOT EXISTS logs_refusals ON logs(user, timestamp) WHERE submission_id = '';
CREATE TABLE IF NOT EXISTS posts (
	key           TEXT PRIMARY KEY,
	user          TEXT NOT NULL,
	course        TEXT NOT NULL,
	section       TEXT NOT NULL,
	assignment    TEXT NOT NULL,
	status        TEXT NOT NULL,
	not_before    INTEGER,
	attempts      INTEGER NOT NULL DEFAULT 0,
	lease_token   TEXT,
	lease_expires INTEGER,
	claimed_at    INTEGER,
	last_error    TEXT,
	want          TEXT,
	want_since    INTEGER,
	inflight      TEXT,
	interrupted   TEXT,
	sent          TEXT,
	confirmed     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS posts_due ON posts(not_before) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS posts_leased ON posts(lease_expires) WHERE status = 'posting';
CREATE TABLE IF NOT EXISTS held (
	key           TEXT PRIMARY KEY,
	body          BLOB NOT NULL,
	expires       INTEGER NOT NULL,
	notebook_name TEXT,
	client        TEXT
);
`

// options are the store's settings that only bench_test.go changes.
type options struct {
	// inline keeps notebooks in the database (the notebook_bodies table),
	// written in the rows' transaction, instead of in segment files: variant
	// B of BenchmarkNotebookStorage.
	inline bool
	// pageSize, if set, is the page size of a new database.
	pageSize int
}

// Open opens (creating if needed) the database at path.
func Open(path string) (*Store, error) { return open(path, options{}) }

func open(path string, opts options) (*Store, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if opts.pageSize != 0 {
		if _, err := w.Exec(fmt.Sprintf(`PRAGMA page_size = %d`, opts.pageSize)); err != nil {
			w.Close()
			return nil, fmt.Errorf("setting up %s: %w", path, err)
		}
	}
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
	if opts.inline {
		if _, err := w.Exec(`CREATE TABLE IF NOT EXISTS notebook_bodies (id TEXT PRIMARY KEY, body BLOB NOT NULL)`); err != nil {
			w.Close()
			return nil, fmt.Errorf("creating the schema in %s: %w", path, err)
		}
	}
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	var blobs *blobLog
	if !opts.inline {
		if blobs, err = openBlobLog(path+".notebooks", segmentSize); err != nil {
			w.Close()
			r.Close()
			return nil, fmt.Errorf("opening the notebooks of %s: %w", path, err)
		}
	}
	s := &Store{w: w, r: r, blobs: blobs, opts: opts, creates: make(chan *createReq), flushed: make(chan []*createReq, 1), quit: make(chan struct{})}
	s.wg.Add(2)
	go s.groupCommit()
	go s.commitRows()
	return s, nil
}

// Close implements service.Store.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.quit) })
	s.wg.Wait()
	err := errors.Join(s.w.Close(), s.r.Close())
	if s.blobs != nil {
		err = errors.Join(err, s.blobs.close())
	}
	return err
}

// migrate brings a database made by an earlier version up to the schema.
func migrate(db *sql.DB) error {
	if err := addColumns(db, "submissions", "post_status TEXT", "post_attempts INTEGER NOT NULL DEFAULT 0", "post_error TEXT",
		"post_next_at INTEGER", "posted_at INTEGER", "post_token TEXT", "not_before INTEGER", "notebook_name TEXT", "feedback TEXT",
		"post_confirmed INTEGER NOT NULL DEFAULT 0", "batch TEXT"); err != nil {
		return err
	}
	if err := addColumns(db, "logs", "actor TEXT NOT NULL DEFAULT ''"); err != nil {
		return err
	}
	if err := migratePosts(db); err != nil {
		return err
	}
	if err := addColumns(db, "held", "notebook_name TEXT", "client TEXT"); err != nil {
		return err
	}
	// The queue's order (see queue.go): due time, then creation.
	_, err := db.Exec(`DROP INDEX IF EXISTS submissions_post_due;
		DROP INDEX IF EXISTS submissions_queued;
		CREATE INDEX IF NOT EXISTS submissions_due ON submissions(COALESCE(not_before, 0), seq) WHERE status = 'queued';
		CREATE INDEX IF NOT EXISTS submissions_batch ON submissions(batch, received_at, seq) WHERE batch IS NOT NULL;
		CREATE INDEX IF NOT EXISTS logs_audit ON logs(course, timestamp) WHERE type = 'audit';
		CREATE INDEX IF NOT EXISTS submissions_user_active ON submissions(user) WHERE status IN ('queued', 'grading')`)
	return err
}

// migratePosts moves the posts of a version that posted per submission
// (post_status 'pending' with a post_next_at, no posts row) into the posts
// table: each student's newest such grade becomes the post's selected
// grade, due at once; grades posted by that version are recorded as sent.
func migratePosts(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE submissions SET post_confirmed = 1 WHERE post_status = 'posted' AND post_confirmed = 0`); err != nil {
		return err
	}
	rows, err := tx.Query(`SELECT id, user, course, section, assignment, grade, received_at, finished_at FROM submissions
		WHERE post_status = 'pending' AND post_next_at IS NOT NULL ORDER BY seq`)
	if err != nil {
		return err
	}
	type old struct {
		user     string
		a        service.Assignment
		g        service.PostedGrade
		finished int64
	}
	var olds []old
	for rows.Next() {
		var o old
		var received int64
		if err := rows.Scan(&o.g.SubmissionID, &o.user, &o.a.Course, &o.a.Section, &o.a.Assignment, &o.g.Grade, &received, &o.finished); err != nil {
			rows.Close()
			return err
		}
		o.g.ReceivedAt = time.Unix(0, received).UTC()
		olds = append(olds, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, o := range olds {
		if err := offerGrade(tx, o.user, o.a, o.g, time.Unix(0, o.finished).UTC(), service.PostLatest); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE submissions SET post_next_at = NULL WHERE id = ?`, o.g.SubmissionID); err != nil {
			return err
		}
	}
	return tx.Commit()
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

// tx runs fn in a transaction on the writer connection. op names the step
// for the fault hook of the conformance suite's fault-injection cases.
func (s *Store) tx(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := s.fault(op, false); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return s.fault(op, true)
}

// fault is the fault hook's answer for op's commit, before it is made
// (applied false) or after (applied true, the answer lost): nil but in the
// fault-injection tests.
func (s *Store) fault(op string, applied bool) error {
	if f := s.faults.Load(); f != nil {
		return (*f)(op, applied)
	}
	return nil
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
