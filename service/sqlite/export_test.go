package sqlite

// SetFaults implements storetest.Faulty.
func (s *Store) SetFaults(f func(op string, applied bool) error) {
	if f == nil {
		s.faults.Store(nil)
		return
	}
	s.faults.Store(&f)
}
