package docker_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading/docker"
	"github.com/otter-service/otter-service/internal/testenv"
)

// BenchmarkOverhead grades a small notebook (lab01-perfect) one at a time and
// reports the runner's own time (create, copy in, start, wait, copy out,
// remove) beside the time otter spends grading inside the container.
func BenchmarkOverhead(b *testing.B) {
	r := newRunner(b, docker.Limits{})
	job := load(b, "lab01-perfect.ipynb").job()
	var total, inside time.Duration
	for i := 0; i < b.N; i++ {
		_, timing, err := r.RunTimed(context.Background(), job)
		if err != nil {
			b.Fatal(err)
		}
		total += timing.Total
		inside += timing.Container
	}
	n := float64(b.N)
	b.ReportMetric(total.Seconds()/n, "s/grading")
	b.ReportMetric(inside.Seconds()/n, "otter-s/grading")
	b.ReportMetric((total-inside).Seconds()*1000/n, "overhead-ms/grading")
	b.ReportMetric(100*(total-inside).Seconds()/inside.Seconds(), "overhead-%")
}

// BenchmarkBurst grades a burst of 50 small notebooks with as many at once as
// the service's default worker count (the number of cores), and compares the
// total time with the ideal: 50 × one grading's time ÷ workers.
func BenchmarkBurst(b *testing.B) {
	const burst = 50
	r := newRunner(b, docker.Limits{})
	job := load(b, "lab01-perfect.ipynb").job()
	workers := runtime.NumCPU()
	// One grading alone, for the ideal (after a first one that warms up the
	// engine's caches and the runner's spare container).
	var single docker.Timing
	for i := 0; i < 2; i++ {
		var err error
		if _, single, err = r.RunTimed(context.Background(), job); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		jobs := make(chan struct{}, burst)
		for j := 0; j < burst; j++ {
			jobs <- struct{}{}
		}
		close(jobs)
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range jobs {
					if _, err := r.Run(context.Background(), job); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		elapsed += time.Since(start)
	}
	ideal := time.Duration(burst) * single.Total / time.Duration(workers)
	actual := elapsed / time.Duration(b.N)
	b.ReportMetric(actual.Seconds(), "s/burst")
	b.ReportMetric(ideal.Seconds(), "ideal-s/burst")
	b.ReportMetric(100*ideal.Seconds()/actual.Seconds(), "efficiency-%")
	b.ReportMetric(float64(workers), "workers")
}

// BenchmarkGrading grades lab01-perfect one at a time and reports the wall
// time and the machine's CPU time per grading (all cores' busy time from
// /proc/stat, so the engine's and the container's work both count; run it
// on an otherwise idle machine). scripts/bench-separation.sh runs it
// interleaved against an earlier design.
func BenchmarkGrading(b *testing.B) {
	r := newRunner(b, docker.Limits{})
	job := load(b, "lab01-perfect.ipynb").job()
	if _, err := r.Run(context.Background(), job); err != nil { // warm up
		b.Fatal(err)
	}
	b.ResetTimer()
	var wall time.Duration
	var cpu float64
	for i := 0; i < b.N; i++ {
		c0 := busyCPU(b)
		start := time.Now()
		if _, err := r.Run(context.Background(), job); err != nil {
			b.Fatal(err)
		}
		wall += time.Since(start)
		cpu += busyCPU(b) - c0
	}
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/grading")
	b.ReportMetric(cpu/float64(b.N), "cpu-s/grading")
}

// busyCPU returns the seconds all cores have spent busy since boot.
func busyCPU(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Skip("no /proc/stat")
	}
	fields := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])[1:]
	var busy float64
	for i, f := range fields {
		v, _ := strconv.ParseFloat(f, 64)
		if i != 3 && i != 4 { // idle and iowait
			busy += v
		}
	}
	return busy / 100 // USER_HZ
}

// BenchmarkWarmCold compares the warm path (graders started ahead in the
// spare containers) with the cold path (kernel and grader started for each
// job) on lab01-perfect, interleaved: in each round, in alternating order,
// each path grades
//   - idle: 5 gradings one at a time, each when a spare is ready: the time
//     from the notebook handed to the runner to its result (Run's return);
//   - burst: 100 at once with W workers (W = cores for the cold path; cores,
//     cores+1 and cores+2 for the warm one): gradings per minute, the
//     containers' own CPU per grading (from their cgroups through the
//     engine, warm-up of every spare made included, the engine's own work
//     not), the machine's busy CPU per grading, and time to grade (from the
//     burst's start) p50 and p99;
//   - and, warm only, what an idle ready spare holds: memory, and the CPU
//     its warm-up took (the waste of a spare never used).
//
// It reports the medians over the rounds (OTTER_BENCH_ROUNDS, default 3)
// and logs each round and the minima. make bench runs it.
func BenchmarkWarmCold(b *testing.B) {
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("OTTER_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	const idle, burst = 5, 100
	cores := runtime.NumCPU()
	job := load(b, "lab01-perfect.ipynb").job()
	type runner struct {
		name    string
		r       *docker.Runner
		workers int
		mu      sync.Mutex
		cpu     time.Duration // containers removed since the last reset
		n       int
	}
	limits := docker.Limits{Timeout: 5 * time.Minute}
	mk := func(name string, workers int, opts ...docker.Option) *runner {
		rr := &runner{name: name, workers: workers}
		opts = append(opts, docker.MeasureUsage(func(u docker.Usage) {
			rr.mu.Lock()
			rr.cpu += u.CPU
			rr.n++
			rr.mu.Unlock()
		}))
		r, err := docker.New(testenv.GradingImage(), fmt.Sprintf("%s-bench-%s", instance, name), limits, workers, docker.Builds{}, opts...)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Check(ctx); err != nil {
			r.Close()
			testenv.Missing(b, "no Docker engine with the grading image: %v", err)
		}
		rr.r = r
		return rr
	}
	testenv.Slow(b, "grades in real containers")
	var runners []*runner
	runners = append(runners, mk("cold", cores, docker.ColdGraders()))
	for w := cores; w <= cores+2; w++ {
		runners = append(runners, mk(fmt.Sprintf("warm-w%d", w), w))
	}
	defer func() {
		for _, rr := range runners {
			rr.r.Close()
		}
	}()
	type figures struct{ idleP50, idleMin, perMin, cpu, machineCPU, ttgP50, ttgP99, spareMiB, spareCPU float64 }
	results := map[string][]figures{}
	pct := func(ds []time.Duration, p float64) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[min(len(ds)-1, int(p*float64(len(ds))))]
	}
	b.ResetTimer()
	for round := 0; round < rounds; round++ {
		order := slices.Clone(runners)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, rr := range order {
			var f figures
			rr.r.StartSpares()
			// Idle: one at a time, a ready spare each time.
			var idles []time.Duration
			for i := 0; i < idle; i++ {
				waitSpares(b, rr.r, testenv.GradingImage(), rr.workers)
				_, timing, err := rr.r.RunTimed(context.Background(), job)
				if err != nil {
					b.Fatal(err)
				}
				idles = append(idles, timing.Total)
			}
			f.idleP50, f.idleMin = pct(idles, 0.5).Seconds(), pct(idles, 0).Seconds()
			// An idle spare, warm-up done.
			waitSpares(b, rr.r, testenv.GradingImage(), rr.workers)
			if us, err := rr.r.SpareUsage(context.Background()); err == nil && len(us) > 0 {
				f.spareMiB, f.spareCPU = float64(us[0].Memory)/(1<<20), us[0].CPU.Seconds()
			}
			// The burst.
			rr.mu.Lock()
			rr.cpu, rr.n = 0, 0
			rr.mu.Unlock()
			jobs := make(chan struct{}, burst)
			for j := 0; j < burst; j++ {
				jobs <- struct{}{}
			}
			close(jobs)
			var mu sync.Mutex
			var ttg []time.Duration
			c0 := busyCPU(b)
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < rr.workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range jobs {
						if _, err := rr.r.Run(context.Background(), job); err != nil {
							b.Error(err)
						}
						mu.Lock()
						ttg = append(ttg, time.Since(start))
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			machine := busyCPU(b) - c0
			// The spares made during the burst are its cost too.
			waitSpares(b, rr.r, testenv.GradingImage(), rr.workers)
			var spareCPU time.Duration
			if us, err := rr.r.SpareUsage(context.Background()); err == nil {
				for _, u := range us {
					spareCPU += u.CPU
				}
			}
			deadline := time.Now().Add(time.Minute) // the background removals
			for {
				rr.mu.Lock()
				n := rr.n
				rr.mu.Unlock()
				if n >= burst || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			rr.mu.Lock()
			f.cpu = (rr.cpu + spareCPU).Seconds() / burst
			rr.mu.Unlock()
			f.perMin = burst / elapsed.Minutes()
			f.machineCPU = machine / burst
			f.ttgP50, f.ttgP99 = pct(ttg, 0.5).Seconds(), pct(ttg, 0.99).Seconds()
			results[rr.name] = append(results[rr.name], f)
			b.Logf("round %d %-8s idle p50 %.2f s (min %.2f); burst %.1f/min (%.1f per core-minute), container CPU %.2f s/grading, machine CPU %.2f s/grading, time to grade p50 %.1f s p99 %.1f s; idle spare %.0f MiB, warm-up CPU %.2f s",
				round+1, rr.name, f.idleP50, f.idleMin, f.perMin, f.perMin/float64(cores), f.cpu, f.machineCPU, f.ttgP50, f.ttgP99, f.spareMiB, f.spareCPU)
		}
	}
	b.StopTimer()
	med := func(fs []figures, get func(figures) float64) float64 {
		vs := make([]float64, len(fs))
		for i, f := range fs {
			vs[i] = get(f)
		}
		sort.Float64s(vs)
		return vs[len(vs)/2]
	}
	for _, rr := range runners {
		fs := results[rr.name]
		p := rr.name + "-"
		b.ReportMetric(med(fs, func(f figures) float64 { return f.idleP50 }), p+"idle-s")
		b.ReportMetric(med(fs, func(f figures) float64 { return f.perMin }), p+"burst-gradings/min")
		b.ReportMetric(med(fs, func(f figures) float64 { return f.perMin / float64(cores) }), p+"gradings/core-min")
		b.ReportMetric(med(fs, func(f figures) float64 { return f.cpu }), p+"container-cpu-s")
		b.ReportMetric(med(fs, func(f figures) float64 { return f.machineCPU }), p+"machine-cpu-s")
		b.ReportMetric(med(fs, func(f figures) float64 { return f.ttgP50 }), p+"ttg-p50-s")
		b.ReportMetric(med(fs, func(f figures) float64 { return f.ttgP99 }), p+"ttg-p99-s")
		b.ReportMetric(med(fs, func(f figures) float64 { return f.spareMiB }), p+"spare-MiB")
		b.ReportMetric(med(fs, func(f figures) float64 { return f.spareCPU }), p+"spare-warmup-cpu-s")
	}
}
