package notify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/portwarden/portwarden/watcher"
)

// funcNotifier is a Notifier made of a function.
type funcNotifier struct {
	name   string
	notify func(context.Context, Alert) error
}

func (f funcNotifier) Name() string                              { return f.name }
func (f funcNotifier) Notify(ctx context.Context, a Alert) error { return f.notify(ctx, a) }

func newTestDispatcher(t *testing.T, opts Options, routes ...Route) *Dispatcher {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return NewDispatcher(opts, routes...)
}

func alertFor(id string) Alert {
	return Alert{Verdict: VerdictStopped, Container: watcher.Container{ID: id}}
}

// A notifier that hangs delays neither Send nor the other notifiers.
func TestSlowNotifierBlocksNobody(t *testing.T) {
	hang := make(chan struct{})
	var mu sync.Mutex
	var fast []string
	delivered := make(chan struct{}, 10)
	d := newTestDispatcher(t, Options{},
		Route{Notifier: funcNotifier{"slow", func(ctx context.Context, _ Alert) error {
			select {
			case <-hang:
			case <-ctx.Done():
			}
			return ctx.Err()
		}}},
		Route{Notifier: funcNotifier{"fast", func(_ context.Context, a Alert) error {
			mu.Lock()
			fast = append(fast, a.Container.ID)
			mu.Unlock()
			delivered <- struct{}{}
			return nil
		}}},
	)
	start := time.Now()
	for _, id := range []string{"a", "b", "c"} {
		d.Send(alertFor(id))
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Send took %s with a hanging notifier", took)
	}
	for range 3 {
		select {
		case <-delivered:
		case <-time.After(5 * time.Second):
			t.Fatal("fast notifier starved by the slow one")
		}
	}
	mu.Lock()
	if len(fast) != 3 || fast[0] != "a" || fast[2] != "c" {
		t.Errorf("fast notifier got %q, want a, b, c in order", fast)
	}
	mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Close(ctx); !errors.Is(err, ErrFlushTimeout) {
		t.Errorf("Close with a hung notifier = %v, want ErrFlushTimeout", err)
	}
	close(hang)
}

func TestCloseFlushesQueuedAlerts(t *testing.T) {
	var got []string
	d := newTestDispatcher(t, Options{},
		Route{Notifier: funcNotifier{"rec", func(_ context.Context, a Alert) error {
			time.Sleep(time.Millisecond)
			got = append(got, a.Container.ID)
			return nil
		}}})
	for _, id := range []string{"a", "b", "c", "d"} {
		d.Send(alertFor(id))
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Errorf("delivered %q before Close returned, want all 4", got)
	}
}
