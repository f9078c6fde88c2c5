package notify

import (
	"bufio"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ledgerSize bounds the starts the ledger remembers.
const ledgerSize = 5000

// ledger remembers which container starts were alerted, and how, so that
// a restart of portwarden, whose reconcile sees the same running
// containers again, does not alert them twice. With a path it keeps them
// in an append-only file, compacted when it grows past twice its size,
// written by a goroutine of its own so that Send does no I/O.
type ledger struct {
	path string // "" for memory only
	log  *slog.Logger

	mu      sync.Mutex
	seen    map[string]bool
	order   []string
	pending []string // remembered, not yet in the file

	kick   chan struct{} // wakes the writer
	done   chan struct{}
	lines  int // in the file; only the writer touches it
	warned bool
}

func openLedger(path string, log *slog.Logger) *ledger {
	l := &ledger{path: path, log: log, seen: map[string]bool{}}
	if path == "" {
		return l
	}
	defer func() {
		l.kick, l.done = make(chan struct{}, 1), make(chan struct{})
		go l.write()
	}()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l
	}
	if err != nil {
		log.Warn("alert ledger unreadable; starts may be alerted again", "path", path,
			"err", err)
		return l
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l.remember(sc.Text())
		l.lines++
	}
	return l
}

// alertKey identifies one alert about one start: the container, its start
// time and the verdict, so that a start alerted in alert mode is alerted
// again when enforce mode stops it. "exited" counts as "stopped": a start
// that portwarden stopped looks exited when it is seen again after a
// restart, and a start that exited by itself cannot be stopped after.
func alertKey(a Alert) string {
	if a.StartedAt.IsZero() || a.Container.ID == "" {
		return ""
	}
	verdict := a.Verdict
	if verdict == VerdictExited {
		verdict = VerdictStopped
	}
	return a.Container.ID + " " + a.StartedAt.UTC().Format("2006-01-02T15:04:05.999999999Z") +
		" " + verdict
}

// first reports whether key is new, and remembers it.
func (l *ledger) first(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[key] {
		return false
	}
	l.remember(key)
	if l.kick != nil {
		l.pending = append(l.pending, key)
		select {
		case l.kick <- struct{}{}:
		default: // the writer is awake already
		}
	}
	return true
}

// close writes what is pending and stops the writer.
func (l *ledger) close() {
	if l.kick != nil {
		close(l.kick)
		<-l.done
	}
}

// write appends pending keys to the file in batches, and rewrites the file
// from memory when it has grown past twice the ledger's size.
func (l *ledger) write() {
	defer close(l.done)
	for {
		_, open := <-l.kick
		l.mu.Lock()
		keys := l.pending
		l.pending = nil
		var all []string
		if l.lines+len(keys) > 2*ledgerSize {
			all = append([]string{}, l.order...)
		}
		l.mu.Unlock()

		var err error
		switch {
		case all != nil:
			err = l.compact(all)
		case len(keys) > 0:
			err = appendLines(l.path, keys)
			l.lines += len(keys)
		}
		if err != nil && !l.warned {
			l.warned = true
			l.log.Warn("alert ledger not written; starts may be alerted again after a restart",
				"path", l.path, "err", err)
		}
		if !open {
			return
		}
	}
}

func (l *ledger) remember(key string) {
	if key == "" || l.seen[key] {
		return
	}
	l.seen[key] = true
	l.order = append(l.order, key)
	if len(l.order) > ledgerSize {
		delete(l.seen, l.order[0])
		l.order = l.order[1:]
	}
}

func (l *ledger) compact(keys []string) error {
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	l.lines = len(keys)
	return os.Rename(tmp, l.path)
}

func appendLines(path string, lines []string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
