package sqlite

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// blobLog keeps notebooks outside the database, appended to segment files
// (notebooks-000001.seg, ...) beside it. The group commit writes a batch's
// notebooks one after the other, from one goroutine, and flushes the segment
// once for the whole batch, before the rows that point at them are
// committed. (One vectored write per batch, pwritev, was measured against
// this and gained nothing: BENCHMARKS.md.) So a committed row never points
// at data that is not on disk, a crash leaves at most unreferenced bytes at
// a segment's end, and the database stays small enough that its own commits
// are quick.
type blobLog struct {
	dir     string
	maxSize int64

	mu   sync.Mutex
	cur  *segment
	segs map[int]*segment
}

type segment struct {
	n    int
	f    *os.File
	size int64 // next append offset
}

// blobRef locates a notebook.
type blobRef struct {
	seg    int
	off    int64
	length int64
	crc    uint32
}

const segmentPrefix, segmentSuffix = "notebooks-", ".seg"

func openBlobLog(dir string, maxSize int64) (*blobLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	l := &blobLog{dir: dir, maxSize: maxSize, segs: map[int]*segment{}}
	names, err := filepath.Glob(filepath.Join(dir, segmentPrefix+"*"+segmentSuffix))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, name := range names {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), segmentPrefix), segmentSuffix))
		if err != nil {
			continue
		}
		if _, err := l.open(n); err != nil {
			l.close()
			return nil, err
		}
	}
	if l.cur == nil {
		if _, err := l.open(1); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *blobLog) path(n int) string {
	return filepath.Join(l.dir, fmt.Sprintf("%s%06d%s", segmentPrefix, n, segmentSuffix))
}

// open opens (creating) segment n and makes it current if it is the newest.
func (l *blobLog) open(n int) (*segment, error) {
	_, statErr := os.Stat(l.path(n))
	f, err := os.OpenFile(l.path(n), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if os.IsNotExist(statErr) { // a new file: make its directory entry durable
		if err := syncDir(l.dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &segment{n: n, f: f, size: st.Size()}
	l.segs[n] = s
	if l.cur == nil || n > l.cur.n {
		l.cur = s
	}
	return s, nil
}

// appendBatch writes the blobs one after the other at the end of the
// current segment (rotating first if they would overflow it), without
// flushing, and returns where each is. crcs are the blobs' checksums.
func (l *blobLog) appendBatch(blobs [][]byte, crcs []uint32) ([]blobRef, *segment, error) {
	var total int64
	for _, b := range blobs {
		total += int64(len(b))
	}
	l.mu.Lock()
	s := l.cur
	if s.size > 0 && s.size+total > l.maxSize {
		var err error
		if s, err = l.open(s.n + 1); err != nil {
			l.mu.Unlock()
			return nil, nil, err
		}
	}
	off := s.size
	s.size += total
	l.mu.Unlock()

	refs := make([]blobRef, len(blobs))
	pos := off
	for i, b := range blobs {
		refs[i] = blobRef{seg: s.n, off: pos, length: int64(len(b)), crc: crcs[i]}
		pos += int64(len(b))
	}
	for _, b := range blobs {
		if _, err := s.f.WriteAt(b, off); err != nil {
			return nil, nil, err
		}
		off += int64(len(b))
	}
	return refs, s, nil
}

// checksum is the checksum stored with each blob.
func checksum(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// read returns the blob at ref, checking its checksum.
func (l *blobLog) read(ref blobRef) ([]byte, error) {
	l.mu.Lock()
	s, ok := l.segs[ref.seg]
	l.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("notebook segment %d is missing", ref.seg)
	}
	data := make([]byte, ref.length)
	if _, err := s.f.ReadAt(data, ref.off); err != nil {
		return nil, fmt.Errorf("reading notebook segment %d: %w", ref.seg, err)
	}
	if checksum(data) != ref.crc {
		return nil, fmt.Errorf("notebook segment %d is corrupt at offset %d", ref.seg, ref.off)
	}
	return data, nil
}

func (l *blobLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, s.f.Close())
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
