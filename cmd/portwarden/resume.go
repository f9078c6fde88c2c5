package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/portwarden/portwarden/watcher"
)

// resumeInterval is how often the resume point is saved. An older point
// is safe: the engine replays more, and the de-duplication drops what
// was handled.
const resumeInterval = 10 * time.Second

// resumePoint is state_dir/resume: up to when an engine's events were
// read, so that the next run asks the engine for the events after it and
// judges the starts of containers that ran, and perhaps exited, while
// portwarden was down. The engine holds only its latest events, and none
// from before its own restart; the reconcile covers what still runs.
type resumePoint struct {
	Host  string    `json:"host"`
	Until time.Time `json:"until"`
}

func resumePath(stateDir string) string {
	return filepath.Join(stateDir, "resume")
}

// loadResume returns the point saved for host, or the zero time when
// there is none or it is another engine's.
func loadResume(stateDir, host string) (time.Time, error) {
	if stateDir == "" {
		return time.Time{}, nil
	}
	path := resumePath(stateDir)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	var p resumePoint
	if err := json.Unmarshal(b, &p); err != nil {
		return time.Time{}, fmt.Errorf("decoding %s: %w", path, err)
	}
	if p.Host != host {
		return time.Time{}, nil
	}
	return p.Until, nil
}

// saveResume writes the point for host, whole or not at all.
func saveResume(stateDir, host string, until time.Time) error {
	b, err := json.Marshal(resumePoint{Host: host, Until: until.UTC()})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(stateDir, ".resume-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is none
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), resumePath(stateDir))
}

// resumeSince is the WatchOptions.Since of a watch of host: the saved
// point, said in the log, or the zero time. An unreadable point is said
// once and not used.
func resumeSince(log *slog.Logger, stateDir, host string) time.Time {
	since, err := loadResume(stateDir, host)
	switch {
	case err != nil:
		log.Warn("resume point unreadable: the events of the time portwarden was down are "+
			"not replayed; the reconcile still judges what runs", "err", err)
	case !since.IsZero():
		log.Info("resuming the event stream where the last run left it", "since", since)
	}
	return since
}

// resumeKeeper saves the resume point of one watch.
type resumeKeeper struct {
	log      *slog.Logger
	stateDir string
	host     string
	w        *watcher.Watcher

	mu      sync.Mutex
	saved   time.Time
	failing bool
}

// keep saves the point every resumeInterval until ctx ends.
func (k *resumeKeeper) keep(ctx context.Context) {
	t := time.NewTicker(resumeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.save()
		}
	}
}

// save writes the point if it moved. A failing write is said once, and
// its end once.
func (k *resumeKeeper) save() {
	if k.stateDir == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	until := k.w.ResumePoint()
	if until.IsZero() || !until.After(k.saved) {
		return
	}
	err := saveResume(k.stateDir, k.host, until)
	switch {
	case err != nil && !k.failing:
		k.failing = true
		k.log.Warn("resume point not saved; a restart replays from the last one saved",
			"path", resumePath(k.stateDir), "err", err)
	case err == nil && k.failing:
		k.failing = false
		k.log.Info("resume point saved again", "path", resumePath(k.stateDir))
	}
	if err == nil {
		k.saved = until
	}
}
