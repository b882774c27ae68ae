package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/otter-service/otter-service/service"
)

// Hold implements service.Store.
func (s *Store) Hold(ctx context.Context, key string, h service.HeldSubmission, expires time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO held (key, body, expires, notebook_name, client) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET body = excluded.body, expires = excluded.expires, notebook_name = excluded.notebook_name,
			client = excluded.client`,
		key, h.Body, expires.UnixNano(), h.NotebookName, h.Client)
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

// HeldUsage implements service.Store.
func (s *Store) HeldUsage(ctx context.Context, now time.Time, client string) (service.HeldUsage, error) {
	var u service.HeldUsage
	err := s.r.QueryRowContext(ctx, `SELECT count(*), COALESCE(sum(length(body)), 0),
			COALESCE(sum(client = ?), 0), COALESCE(sum(CASE WHEN client = ? THEN length(body) END), 0)
		FROM held WHERE expires > ?`, client, client, now.UnixNano()).Scan(&u.Count, &u.Bytes, &u.ClientCount, &u.ClientBytes)
	if client == "" {
		u.ClientCount, u.ClientBytes = 0, 0
	}
	return u, mapError(err)
}
