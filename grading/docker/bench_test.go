package docker_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otter-service/otter-service/grading/docker"
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
