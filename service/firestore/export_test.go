package firestore

import "time"

// SetFaults implements storetest.Faulty.
func (s *Store) SetFaults(f func(op string, applied bool) error) {
	if f == nil {
		s.faults.Store(nil)
		return
	}
	s.faults.Store(&f)
}

// SetTimeouts sets the bounds of what a request waits for.
func (s *Store) SetTimeouts(read, write time.Duration) { s.readTimeout, s.writeTimeout = read, write }
