package sqlite

// QueueLength is the number of jobs waiting for the writer, for tests that
// need several jobs to land in one batch.
func QueueLength(s *Store) int { return len(s.queue) }

// Closing reports whether Close has begun.
func Closing(s *Store) bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}
