package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otter-service/otter-service/internal/testenv"
	"github.com/otter-service/otter-service/service"
	"github.com/otter-service/otter-service/service/firestore"
	"github.com/otter-service/otter-service/service/httpapi"
)

// realisticNotebook returns a Submit-button body of about size bytes: a
// notebook with markdown, code cells and a few image outputs, like a student's
// lab with plots.
func realisticNotebook(size int) []byte {
	var cells []map[string]any
	for i := 0; ; i++ {
		cells = append(cells, map[string]any{"cell_type": "markdown", "metadata": map[string]any{},
			"source": []string{fmt.Sprintf("## Question %d\n", i), "Explain what the table shows, in a sentence or two.\n"}})
		outputs := []any{map[string]any{"output_type": "stream", "name": "stdout", "text": []string{"array([1, 2, 3])\n"}}}
		if i%3 == 0 {
			png := make([]byte, 12<<10)
			rand.Read(png)
			outputs = append(outputs, map[string]any{"output_type": "display_data", "metadata": map[string]any{},
				"data": map[string]any{"image/png": base64.StdEncoding.EncodeToString(png), "text/plain": []string{"<Figure size 640x480>"}}})
		}
		cells = append(cells, map[string]any{"cell_type": "code", "execution_count": i, "metadata": map[string]any{},
			"source":  []string{"import numpy as np\n", fmt.Sprintf("q%d = np.arange(%d).sum()\n", i, i), "q" + fmt.Sprint(i)},
			"outputs": outputs})
		nb := map[string]any{"nbformat": 4, "nbformat_minor": 5, "cells": cells,
			"metadata": map[string]any{
				"kernelspec":    map[string]any{"name": "python3", "display_name": "Python 3", "language": "python"},
				"otter_service": map[string]any{"course": "8x", "section": "1", "assignment": "lab01"}}}
		body, _ := json.Marshal(map[string]any{"nb": nb})
		if len(body) >= size {
			return body
		}
	}
}

// production is the service's configuration in production as far as the
// accept path is concerned: the queue bound and the per-student bound (each
// request comes from its own student, as on a deadline night).
var production = service.Config{MaxQueue: 1 << 20, MaxPerUser: 5}

// BenchmarkAccept measures the accept path, POST → 202, over real HTTP on
// loopback with the embedded store on disk, at 1, 16 and 64 concurrent
// clients, with the production limits checked. No workers run, so grading
// does not compete for the CPU. Reports throughput and p50/p99 latency.
func BenchmarkAccept(b *testing.B) {
	body := realisticNotebook(200 << 10)
	for _, clients := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			srv := newServerWith(b, &fakeRunner{}, userHeader{}, production)
			accept(b, srv.URL, body, clients)
		})
	}
}

// BenchmarkAcceptFirestore is BenchmarkAccept with the Firestore store, on
// the emulator the tests use (or the one FIRESTORE_EMULATOR_HOST names).
func BenchmarkAcceptFirestore(b *testing.B) {
	host := testenv.FirestoreEmulator(b)
	b.Setenv("FIRESTORE_EMULATOR_HOST", host)
	body := realisticNotebook(200 << 10)
	for _, clients := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			store, err := firestore.New(context.Background(), "otter-service-bench", fmt.Sprintf("bench%d", time.Now().UnixNano()))
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			svc := service.New(store, newFakeCourses(b), &fakeRunner{}, production, log)
			srv := httptest.NewServer(httpapi.Handler(svc, userHeader{}, httpapi.Config{Prefix: prefix, MaxBodySize: 1 << 20}, log))
			defer srv.Close()
			accept(b, srv.URL, body, clients)
		})
	}
}

// accept posts body b.N times from the given number of concurrent clients
// and reports throughput and p50/p99 latency.
func accept(b *testing.B, url string, body []byte, clients int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	latencies := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, url+prefix, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Test-User", fmt.Sprintf("student%d", i))
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				latencies[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) float64 {
		return float64(latencies[min(int(p*float64(len(latencies))), len(latencies)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "accepted/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
