// Package backoff is the retry wait that portwarden's reconnects and
// notifier retries share.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Wait returns the wait before retry n (from 1): doubling from lo up to
// hi, with the upper half jittered so that nodes that lost the same peer
// do not retry in step.
func Wait(n int, lo, hi time.Duration) time.Duration {
	d := lo << min(n-1, 20)
	if d <= 0 || d > hi {
		d = hi
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits for d or until ctx ends, and reports whether it waited.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
