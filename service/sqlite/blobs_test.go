package sqlite

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSegmentsRotateAndReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "notebooks")
	l, err := openBlobLog(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	var refs []blobRef
	var blobs [][]byte
	for i := 0; i < 5; i++ {
		b := bytes.Repeat([]byte{byte('a' + i)}, 60)
		refs1, seg, err := l.appendBatch([][]byte{b}, []uint32{checksum(b)})
		if err != nil {
			t.Fatal(err)
		}
		ref := refs1[0]
		if err := seg.f.Sync(); err != nil {
			t.Fatal(err)
		}
		refs, blobs = append(refs, ref), append(blobs, b)
	}
	if refs[4].seg < 3 {
		t.Errorf("5 blobs of 60 bytes in segments of 100 bytes ended in segment %d", refs[4].seg)
	}
	l.close()
	l, err = openBlobLog(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	for i, ref := range refs {
		got, err := l.read(ref)
		if err != nil || !bytes.Equal(got, blobs[i]) {
			t.Errorf("blob %d after reopening: %q, %v", i, got, err)
		}
	}
	next, _, err := l.appendBatch([][]byte{[]byte("next"), []byte("and more")}, []uint32{checksum([]byte("next")), checksum([]byte("and more"))})
	if err != nil || len(next) != 2 || next[0].seg < refs[4].seg || next[1].off != next[0].off+4 {
		t.Fatalf("appendBatch after reopening = %+v, %v; want the newest segment, one after the other", next, err)
	}
	ref := next[0]
	if got, err := l.read(next[1]); err != nil || string(got) != "and more" {
		t.Errorf("second blob of a batch: %q, %v", got, err)
	}
	if err != nil || ref.seg < refs[4].seg {
		t.Errorf("append after reopening went to segment %d (%v); want the newest", ref.seg, err)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != ref.seg {
		t.Errorf("%d segment files for %d segments", len(files), ref.seg)
	}
	if _, err := l.read(blobRef{seg: 99, length: 1}); err == nil {
		t.Error("read of a missing segment succeeded")
	}
}
