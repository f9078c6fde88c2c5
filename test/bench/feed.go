package main

import (
	"context"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/test/enginetest"
)

// startFeed follows the engine's start events, as portwarden does, and
// tells each waiter when its container's start arrived. For the limit arm
// it kills a container the instant its start arrives.
type startFeed struct {
	engine *enginetest.Engine
	mu     sync.Mutex
	wait   map[string]chan time.Time
	kill   map[string]bool
}

func followStarts(ctx context.Context, e *enginetest.Engine) (*startFeed, error) {
	f := &startFeed{engine: e, wait: map[string]chan time.Time{}, kill: map[string]bool{}}
	res := e.Events(ctx, client.EventsListOptions{Filters: make(client.Filters).
		Add("type", "container").Add("event", "start")})
	select {
	case err := <-res.Err:
		return nil, err
	default:
	}
	go func() {
		for msg := range res.Messages {
			f.seen(msg)
		}
	}()
	return f, nil
}

func (f *startFeed) seen(msg events.Message) {
	at := time.Now()
	f.mu.Lock()
	ch, kill := f.wait[msg.Actor.ID], f.kill[msg.Actor.ID]
	delete(f.wait, msg.Actor.ID)
	f.mu.Unlock()
	if kill {
		go f.engine.ContainerKill(context.Background(), msg.Actor.ID,
			client.ContainerKillOptions{Signal: "KILL"})
	}
	if ch != nil {
		ch <- at
	}
}

// expect returns a channel that receives when id's start event arrives;
// with kill, the feed kills the container then.
func (f *startFeed) expect(id string, kill bool) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wait[id] = ch
	if kill {
		f.kill[id] = true
	}
	return ch
}
