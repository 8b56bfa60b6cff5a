package sqlite

import "context"

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

// LeaveReadersInTransactions puts every reader of s inside a read
// transaction that has taken its snapshot, as a ROLLBACK that failed would
// leave one, and returns them to the pool.
func LeaveReadersInTransactions(s *Store) error {
	taken := make([]*stmtCache, 0, cap(s.readers))
	defer func() {
		for _, r := range taken {
			s.readers <- r
		}
	}()
	for range cap(s.readers) {
		r := <-s.readers
		taken = append(taken, r)
		err := r.within(func() error {
			if err := r.Exec(context.Background(), "BEGIN"); err != nil {
				return err
			}
			var n int
			return r.QueryRow(context.Background(), "SELECT COUNT(*) FROM users").Scan(&n)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
