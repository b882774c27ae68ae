package firestore

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"github.com/otter-service/otter-service/service"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Hold implements service.Store. Bodies larger than a document can hold are
// kept in chunk documents beside it, written first.
func (s *Store) Hold(ctx context.Context, key string, h service.HeldSubmission, expires time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	doc := s.holds.Doc(key)
	d := map[string]any{"expires": expires.UTC(), "expires_us": expires.UnixMicro(), "notebook_name": h.NotebookName, "bytes": len(h.Body),
		"client": h.Client}
	if len(h.Body) <= chunkSize {
		d["body"] = h.Body
	} else {
		n, err := putChunks(ctx, doc, h.Body)
		if err != nil {
			return err
		}
		d["chunks"] = n
	}
	_, err := doc.Set(ctx, d)
	return mapError(err)
}

// Held implements service.Store.
func (s *Store) Held(ctx context.Context, key string, now time.Time) (service.HeldSubmission, error) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	snap, err := s.holds.Doc(key).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return service.HeldSubmission{}, service.Errorf(service.ENOTFOUND, "Nothing is held under this key.")
	}
	if err != nil {
		return service.HeldSubmission{}, mapError(err)
	}
	var d struct {
		Body         []byte `firestore:"body"`
		Chunks       int    `firestore:"chunks"`
		Expires      int64  `firestore:"expires_us"`
		NotebookName string `firestore:"notebook_name"`
	}
	if err := snap.DataTo(&d); err != nil {
		return service.HeldSubmission{}, fmt.Errorf("firestore: held %s: %w", key, err)
	}
	if d.Expires <= now.UnixMicro() {
		return service.HeldSubmission{}, service.Errorf(service.ENOTFOUND, "Nothing is held under this key.")
	}
	body, err := getChunks(ctx, s.holds.Doc(key), d.Body, d.Chunks)
	if err != nil {
		return service.HeldSubmission{}, err
	}
	return service.HeldSubmission{Body: body, NotebookName: d.NotebookName}, nil
}

// DropHeld implements service.Store.
func (s *Store) DropHeld(ctx context.Context, key string, now time.Time) error {
	var refs []*firestore.DocumentRef
	if key != "" {
		refs = append(refs, s.holds.Doc(key))
	}
	expired, err := s.holds.Where("expires_us", "<=", now.UnixMicro()).Select().Limit(100).Documents(ctx).GetAll()
	if err != nil {
		return mapError(err)
	}
	for _, snap := range expired {
		refs = append(refs, snap.Ref)
	}
	for _, ref := range refs {
		chunks, err := ref.Collection("chunks").Select().Documents(ctx).GetAll()
		if err != nil {
			return mapError(err)
		}
		for _, c := range chunks {
			if _, err := c.Ref.Delete(ctx); err != nil {
				return mapError(err)
			}
		}
		if _, err := ref.Delete(ctx); err != nil {
			return mapError(err)
		}
	}
	return nil
}

// HeldUsage implements service.Store, with count and sum aggregations (the
// client's over the index on client and expires_us).
func (s *Store) HeldUsage(ctx context.Context, now time.Time, client string) (service.HeldUsage, error) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	var u service.HeldUsage
	q := s.holds.Where("expires_us", ">", now.UnixMicro())
	res, err := q.NewAggregationQuery().WithCount("n").WithSum("bytes", "b").Get(ctx)
	if err != nil {
		return u, mapError(err)
	}
	u.Count, u.Bytes = int(aggregateInt(res["n"])), aggregateInt(res["b"])
	if client == "" {
		return u, nil
	}
	mine := s.holds.Where("client", "==", client).Where("expires_us", ">", now.UnixMicro())
	res, err = mine.NewAggregationQuery().WithCount("n").WithSum("bytes", "b").Get(ctx)
	if err != nil {
		return u, mapError(err)
	}
	u.ClientCount, u.ClientBytes = int(aggregateInt(res["n"])), aggregateInt(res["b"])
	return u, nil
}

func aggregateInt(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	case *firestorepb.Value:
		if _, ok := v.GetValueType().(*firestorepb.Value_DoubleValue); ok {
			return int64(v.GetDoubleValue())
		}
		return v.GetIntegerValue()
	}
	return 0
}
