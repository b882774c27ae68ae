package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/storetest"
)

// The benchmark's variant B, notebooks in the database, passes the same
// conformance suite, so the comparison is between two correct stores.
func TestConformanceInline(t *testing.T) {
	storetest.Run(t, func(t *testing.T) service.Store {
		s, err := open(filepath.Join(t.TempDir(), "otter.db"), options{inline: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// benchVariants are the stores BenchmarkNotebookStorage compares.
var benchVariants = map[string]options{
	"A":   {},                              // notebooks in segment files, one fsync per batch (the store)
	"B":   {inline: true},                  // notebooks as BLOBs in the database, 4 KiB pages
	"B64": {inline: true, pageSize: 65536}, // the same with 64 KiB pages (new databases only)
}

// BenchmarkNotebookStorage compares where the embedded store keeps
// notebooks, in one run: for each of OTTER_BENCH_ROUNDS rounds (default 5)
// and each notebook size, every variant of benchVariants named in
// OTTER_BENCH_VARIANTS (default "A,B,B64"; the order is reversed every
// other round) gets a new database in OTTER_BENCH_DIR (default a temporary
// directory: put it on the machine's disk, not a tmpfs) and 64 goroutines
// create submissions until there are N (OTTER_BENCH_N300, default 1500, of
// 300 KB; OTTER_BENCH_N2M, default 250, of 2 MB). It prints, per run:
// accepted/s, p50 and p99 create latency, the median Notebook() of 200 of
// them, the bytes on disk with the store open (database, WAL, segments) and
// after Close, and the process's CPU time per submission; then the min,
// median and max over the rounds. Run it with -benchtime 1x
// (scripts/bench-notebooks.sh does).
func BenchmarkNotebookStorage(b *testing.B) {
	rounds := envInt("OTTER_BENCH_ROUNDS", 5)
	names := strings.Split(envString("OTTER_BENCH_VARIANTS", "A,B,B64"), ",")
	for _, n := range names {
		if _, ok := benchVariants[n]; !ok {
			b.Fatalf("unknown variant %q", n)
		}
	}
	base := envString("OTTER_BENCH_DIR", "")
	if base == "" {
		base = b.TempDir()
	} else if err := os.MkdirAll(base, 0o700); err != nil {
		b.Fatal(err)
	}
	sizes := []struct {
		name string
		size int
		n    int
	}{
		{"300KB", 300 << 10, envInt("OTTER_BENCH_N300", 1500)},
		{"2MB", 2 << 20, envInt("OTTER_BENCH_N2M", 250)},
	}
	const clients = 64
	results := map[string][]benchRun{} // by size and variant
	for round := 1; round <= rounds; round++ {
		order := slices.Clone(names)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		fmt.Printf("round %d (load average %s)\n", round, loadAverage())
		for _, sz := range sizes {
			notebooks := make([][]byte, clients)
			rng := rand.New(rand.NewChaCha8([32]byte{byte(round), byte(sz.size >> 10)}))
			for i := range notebooks {
				notebooks[i] = make([]byte, sz.size)
				for j := 0; j < sz.size; j += 8 {
					v := rng.Uint64()
					for k := 0; k < 8 && j+k < sz.size; k++ {
						notebooks[i][j+k] = byte(v >> (8 * k))
					}
				}
			}
			for _, v := range order {
				dir, err := os.MkdirTemp(base, "run-")
				if err != nil {
					b.Fatal(err)
				}
				r, err := benchOne(filepath.Join(dir, "otter.db"), benchVariants[v], notebooks, sz.n)
				os.RemoveAll(dir)
				if err != nil {
					b.Fatal(err)
				}
				key := sz.name + " " + v
				results[key] = append(results[key], r)
				fmt.Printf("  %-5s %-3s %7.1f accepted/s  p50 %6.1f ms  p99 %6.1f ms  read %6.2f ms  open: db %s wal %s segments %s  closed: %s  cpu %.2f ms/sub\n",
					sz.name, v, r.rate, ms(r.p50), ms(r.p99), ms(r.read), mb(r.db), mb(r.wal), mb(r.segs), mb(r.closed), r.cpu*1000)
			}
		}
	}
	fmt.Printf("summary over %d rounds (min / median / max)\n", rounds)
	for _, sz := range sizes {
		for _, v := range names {
			rs := results[sz.name+" "+v]
			col := func(f func(benchRun) float64) string {
				xs := make([]float64, len(rs))
				for i, r := range rs {
					xs[i] = f(r)
				}
				slices.Sort(xs)
				return fmt.Sprintf("%.1f / %.1f / %.1f", xs[0], median(xs), xs[len(xs)-1])
			}
			fmt.Printf("  %-5s %-3s accepted/s %s  p50 ms %s  p99 ms %s  read ms %s  bytes open MB %s  closed MB %s  cpu ms/sub %s\n", sz.name, v,
				col(func(r benchRun) float64 { return r.rate }),
				col(func(r benchRun) float64 { return ms(r.p50) }),
				col(func(r benchRun) float64 { return ms(r.p99) }),
				col(func(r benchRun) float64 { return float64(r.read) / 1e6 }),
				col(func(r benchRun) float64 { return float64(r.db+r.wal+r.segs) / 1e6 }),
				col(func(r benchRun) float64 { return float64(r.closed) / 1e6 }),
				col(func(r benchRun) float64 { return r.cpu * 1000 }))
		}
	}
}

type benchRun struct {
	rate                  float64 // accepted/s
	p50, p99, read        time.Duration
	db, wal, segs, closed int64   // bytes
	cpu                   float64 // process CPU seconds per submission
}

func benchOne(path string, opts options, notebooks [][]byte, n int) (benchRun, error) {
	var r benchRun
	s, err := open(path, opts)
	if err != nil {
		return r, err
	}
	defer s.Close()
	ctx := context.Background()
	ids := make([]string, n)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(notebooks))
	cpu0 := cpuSeconds()
	start := time.Now()
	for c := range notebooks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				sub := &service.Submission{ID: service.NewID(), User: fmt.Sprintf("student%d", i), Status: service.StatusQueued,
					Assignment: service.Assignment{Course: "8x", Section: "1", Assignment: "lab01"}, ReceivedAt: time.Now()}
				t := time.Now()
				if err := s.CreateSubmission(ctx, sub, notebooks[c]); err != nil {
					errs <- err
					return
				}
				lat[i], ids[i] = time.Since(t), sub.ID
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r.cpu = (cpuSeconds() - cpu0) / float64(n)
	close(errs)
	if err := <-errs; err != nil {
		return r, err
	}
	r.rate = float64(n) / elapsed.Seconds()
	slices.Sort(lat)
	r.p50, r.p99 = lat[n/2], lat[n*99/100]
	r.db, r.wal, r.segs = fileSize(path), fileSize(path+"-wal"), dirSize(path+".notebooks")

	rng := rand.New(rand.NewPCG(1, 2))
	reads := make([]time.Duration, min(n, 200))
	for i := range reads {
		id := ids[rng.IntN(n)]
		t := time.Now()
		nb, err := s.Notebook(ctx, id)
		reads[i] = time.Since(t)
		if err != nil || len(nb) != len(notebooks[0]) {
			return r, fmt.Errorf("Notebook(%s): %d bytes, %v", id, len(nb), err)
		}
	}
	slices.Sort(reads)
	r.read = reads[len(reads)/2]
	if err := s.Close(); err != nil {
		return r, err
	}
	r.closed = fileSize(path) + fileSize(path+"-wal") + dirSize(path+".notebooks")
	return r, nil
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n += fileSize(filepath.Join(dir, e.Name()))
	}
	return n
}

// cpuSeconds is the process's user and system CPU time, from /proc (0
// where there is none).
func cpuSeconds() float64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from the 3rd on
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func median(xs []float64) float64 {
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func mb(n int64) string { return fmt.Sprintf("%.1fMB", float64(n)/1e6) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
