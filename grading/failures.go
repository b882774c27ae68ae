package grading

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"
)

// The failures every runner reports, worded once.

// TimeoutError is a grading stopped at its wall-clock limit.
func TimeoutError(limit time.Duration, log string) *Error {
	return &Error{Kind: KindTimeout, Log: log,
		Message: fmt.Sprintf("Grading took longer than %s, so it was stopped. Check for endless loops or very slow code, and submit again.", limit)}
}

// OutputError is a grading stopped for printing more than limit bytes.
func OutputError(limit int, log string) *Error {
	return &Error{Kind: KindOutput, Log: log,
		Message: fmt.Sprintf("The notebook printed more than %d KiB of output while being graded. Remove large or endless prints and submit again.", limit>>10)}
}

// MemoryError is a grading stopped at its memory limit.
func MemoryError(limit int64, log string) *Error {
	return &Error{Kind: KindMemory, Log: log,
		Message: fmt.Sprintf("The notebook used more than %d MiB of memory while being graded, so it was stopped. Use smaller data or free what you no longer need, and submit again.", limit>>20)}
}

// FailedError explains an otter run that gave no result: the notebook's
// kernel died (otter says so in its log), or otter failed for another
// reason, given by why.
func FailedError(why, log string) *Error {
	if strings.Contains(log, "DeadKernelError") || strings.Contains(log, "Kernel died") {
		return KernelError(log)
	}
	return &Error{Kind: KindAutograder, Log: log,
		Message: fmt.Sprintf("The autograder could not grade this notebook (%s). Run all cells from the top to check for errors, and submit again; if it keeps happening, tell your course staff.", why)}
}

// KernelError is a grading whose notebook kernel died.
func KernelError(log string) *Error {
	return &Error{Kind: KindKernel, Log: log,
		Message: "The notebook's Python kernel died while it was graded (the code may have exited the interpreter or crashed it). Run the notebook from the top, fix the cell that crashes, and submit again."}
}

// OutputBuffer keeps the first Max bytes written to it and calls OnOverflow
// once when more arrive. It is safe for concurrent writers.
type OutputBuffer struct {
	Max        int
	OnOverflow func()

	mu   sync.Mutex
	buf  bytes.Buffer
	over bool
}

func (b *OutputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.Max - b.buf.Len(); len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		if !b.over {
			b.over = true
			if b.OnOverflow != nil {
				b.OnOverflow()
			}
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

// Overflowed reports whether more than Max bytes were written.
func (b *OutputBuffer) Overflowed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.over
}

// Tail returns the last 8 KiB kept, for operators.
func (b *OutputBuffer) Tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.Bytes()
	if len(s) > 8<<10 {
		s = s[len(s)-8<<10:]
	}
	return string(bytes.ToValidUTF8(s, nil))
}
