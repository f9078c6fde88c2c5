package watcher

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// benchEngine serves one inspect template under any ID, so that every
// event is a container of its own.
type benchEngine struct {
	*fakeStream
	template container.InspectResponse
}

func (e *benchEngine) ContainerInspect(_ context.Context, id string,
	_ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	c := e.template
	c.ID = id
	return client.ContainerInspectResult{Container: c}, nil
}

type countingHandler struct{ wg *sync.WaitGroup }

func (h countingHandler) Handle(context.Context, Evaluation) bool {
	h.wg.Done()
	return true
}

// BenchmarkDetect is the baseline: detection and the allow list alone, on
// the inspect of a container with six privileged bindings.
func BenchmarkDetect(b *testing.B) {
	c := loadInspect(b, "web")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Detect(c, defaultPolicy); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipeline measures one start event from the stream to the
// Handler: queueing, a (fake, in-memory) inspect, de-duplication,
// detection and the evaluation. The events arrive as fast as the reader
// takes them, as when many containers start at once.
func BenchmarkPipeline(b *testing.B) {
	engine := &benchEngine{fakeStream: newFakeStream(), template: loadInspect(b, "web")}
	var wg sync.WaitGroup
	w := NewWatcher(WatchOptions{
		Engine: engine, Handler: countingHandler{&wg},
		Policy:    func() Policy { return defaultPolicy },
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		QueueSize: 1 << 16,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	s := <-engine.opened
	<-w.Ready()

	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("%064x", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	wg.Add(b.N)
	for _, id := range ids {
		msg := startEvent(engine.template)
		msg.Actor.ID = id
		s.messages <- msg
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if d := w.Stats().Dropped; d != 0 {
		b.Fatalf("dropped %d events", d)
	}
	cancel()
	<-done
}
