package firestore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/firestore"
	"github.com/otter-service/otter-service/service/storetest"
)

// TestQueriesHaveIndexes runs the conformance suite with every query the
// store sends recorded (from the client's requests, as Firestore receives
// them) and checks each against deployment/firestore/firestore.indexes.json
// by Firestore's rules: equality filters alone are served by the
// automatic single-field indexes, as is an order (or range) on one field
// alone; equality filters with an order need composite indexes of
// equality fields followed by the order, together covering every equality
// field (Firestore merges them). The emulator needs no index, so without
// this a missing one would first show on real Firestore, as a failed
// query. Every index in the file must be used by some query, too.
func TestQueriesHaveIndexes(t *testing.T) {
	host := testenv.FirestoreEmulator(t)
	rec := &queryRecorder{}
	storetest.Run(t, func(t *testing.T) service.Store {
		t.Setenv("FIRESTORE_EMULATOR_HOST", host)
		n++
		env := fmt.Sprintf("idx%d-%d", time.Now().UnixNano(), n)
		// The client's own connection to an emulator takes no dial
		// options: this one is the same, with the recorder.
		conn, err := grpc.NewClient(host, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(emulatorOwner{}), grpc.WithChainStreamInterceptor(rec.intercept))
		if err != nil {
			t.Fatal(err)
		}
		s, err := firestore.New(context.Background(), "otter-service-test", env, option.WithGRPCConn(conn))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(); conn.Close() })
		return s
	})
	if t.Failed() {
		return
	}

	indexes := readIndexes(t)
	used := map[int]bool{}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.queries) < 10 {
		t.Fatalf("recorded %d queries; is the recorder working?", len(rec.queries))
	}
	seen := map[string]bool{}
	for _, q := range rec.queries {
		shape := describe(q)
		if seen[shape.String()] {
			continue
		}
		seen[shape.String()] = true
		ok, by := shape.served(indexes)
		if !ok {
			t.Errorf("no index serves the query %s: add one to deployment/firestore/firestore.indexes.json (and its README)", shape)
		}
		for _, i := range by {
			used[i] = true
		}
		t.Logf("%s: %s", shape, map[bool]string{true: "served", false: "NOT SERVED"}[ok])
	}
	for i, ix := range indexes {
		if !used[i] {
			t.Errorf("the index %s serves none of the store's queries: remove it, or add the test that makes its query", ix)
		}
	}
}

// emulatorOwner authorizes requests to an emulator as its owner, as the
// client does for its own connection to one.
type emulatorOwner struct{}

func (emulatorOwner) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}

func (emulatorOwner) RequireTransportSecurity() bool { return false }

// queryRecorder keeps the structured queries of RunQuery and
// RunAggregationQuery requests.
type queryRecorder struct {
	mu      sync.Mutex
	queries []*firestorepb.StructuredQuery
}

func (r *queryRecorder) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	return &recordingStream{ClientStream: s, r: r}, nil
}

type recordingStream struct {
	grpc.ClientStream
	r *queryRecorder
}

func (s *recordingStream) SendMsg(m any) error {
	var q *firestorepb.StructuredQuery
	switch m := m.(type) {
	case *firestorepb.RunQueryRequest:
		q = m.GetStructuredQuery()
	case *firestorepb.RunAggregationQueryRequest:
		q = m.GetStructuredAggregationQuery().GetStructuredQuery()
	}
	if q != nil {
		s.r.mu.Lock()
		s.r.queries = append(s.r.queries, q)
		s.r.mu.Unlock()
	}
	return s.ClientStream.SendMsg(m)
}

// indexField is one field of a composite index, or of a query's order.
type indexField struct {
	Path  string `json:"fieldPath"`
	Order string `json:"order"` // ASCENDING or DESCENDING
}

type index struct {
	Collection string       `json:"collectionGroup"`
	Fields     []indexField `json:"fields"`
}

func (ix index) String() string {
	var f []string
	for _, x := range ix.Fields {
		f = append(f, x.Path+" "+strings.ToLower(x.Order[:3]))
	}
	return ix.Collection + "(" + strings.Join(f, ", ") + ")"
}

// readIndexes reads the index file, with each collection group's name
// without its environment ("production-submissions" is "submissions").
func readIndexes(t *testing.T) []index {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deployment", "firestore", "firestore.indexes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Indexes []index }
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	for i := range file.Indexes {
		c, ok := strings.CutPrefix(file.Indexes[i].Collection, "production-")
		if !ok {
			t.Fatalf("index %s is not for the production environment's collections", file.Indexes[i])
		}
		file.Indexes[i].Collection = c
	}
	return file.Indexes
}

// queryShape is what of a query decides the index it needs.
type queryShape struct {
	Collection string       // without the environment
	Equal      []string     // fields filtered on equality (or in), sorted
	Order      []indexField // the order (a range's field first), without __name__
}

func (q queryShape) String() string {
	var o []string
	for _, x := range q.Order {
		o = append(o, x.Path+" "+strings.ToLower(x.Order[:3]))
	}
	return fmt.Sprintf("%s where %v order by %v", q.Collection, q.Equal, o)
}

func describe(q *firestorepb.StructuredQuery) queryShape {
	var shape queryShape
	if from := q.GetFrom(); len(from) > 0 {
		id := from[0].GetCollectionId() // {environment}-{name}; names have no "-"
		shape.Collection = id[strings.LastIndex(id, "-")+1:]
	}
	eq := map[string]bool{}
	var ranged []string
	var walk func(f *firestorepb.StructuredQuery_Filter)
	walk = func(f *firestorepb.StructuredQuery_Filter) {
		if f == nil {
			return
		}
		if c := f.GetCompositeFilter(); c != nil {
			for _, sub := range c.GetFilters() {
				walk(sub)
			}
			return
		}
		if u := f.GetUnaryFilter(); u != nil {
			eq[u.GetField().GetFieldPath()] = true
			return
		}
		ff := f.GetFieldFilter()
		path := ff.GetField().GetFieldPath()
		switch ff.GetOp() {
		case firestorepb.StructuredQuery_FieldFilter_EQUAL, firestorepb.StructuredQuery_FieldFilter_IN,
			firestorepb.StructuredQuery_FieldFilter_ARRAY_CONTAINS, firestorepb.StructuredQuery_FieldFilter_ARRAY_CONTAINS_ANY:
			eq[path] = true
		default:
			if !slices.Contains(ranged, path) {
				ranged = append(ranged, path)
			}
		}
	}
	walk(q.GetWhere())
	for _, o := range q.GetOrderBy() {
		path := o.GetField().GetFieldPath()
		if path == "__name__" {
			continue
		}
		dir := "ASCENDING"
		if o.GetDirection() == firestorepb.StructuredQuery_DESCENDING {
			dir = "DESCENDING"
		}
		shape.Order = append(shape.Order, indexField{path, dir})
	}
	// A range without an order on its field is ordered on it, ascending,
	// before anything else.
	for _, r := range ranged {
		if !slices.ContainsFunc(shape.Order, func(o indexField) bool { return o.Path == r }) {
			shape.Order = append([]indexField{{r, "ASCENDING"}}, shape.Order...)
		}
	}
	for f := range eq {
		shape.Equal = append(shape.Equal, f)
	}
	sort.Strings(shape.Equal)
	return shape
}

// served reports whether indexes serve q, and which of them do.
func (q queryShape) served(indexes []index) (bool, []int) {
	if len(q.Order) == 0 || len(q.Equal) == 0 && len(q.Order) == 1 {
		return true, nil // single-field indexes
	}
	covered := map[string]bool{}
	var by []int
	for i, ix := range indexes {
		if ix.Collection != q.Collection || len(ix.Fields) < len(q.Order) {
			continue
		}
		k := len(ix.Fields) - len(q.Order)
		if !slices.Equal(ix.Fields[k:], q.Order) {
			continue
		}
		prefix := ix.Fields[:k]
		if !slices.ContainsFunc(prefix, func(f indexField) bool { return !slices.Contains(q.Equal, f.Path) }) &&
			(len(prefix) > 0 || len(q.Equal) == 0) {
			by = append(by, i)
			for _, f := range prefix {
				covered[f.Path] = true
			}
		}
	}
	for _, f := range q.Equal {
		if !covered[f] {
			return false, nil
		}
	}
	return len(by) > 0, by
}
