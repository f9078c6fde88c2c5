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
// in an append-only file, compacted when it grows past twice its size.
type ledger struct {
	path string // "" for memory only
	log  *slog.Logger

	mu     sync.Mutex
	seen   map[string]bool
	order  []string
	lines  int
	warned bool
}

func openLedger(path string, log *slog.Logger) *ledger {
	l := &ledger{path: path, log: log, seen: map[string]bool{}}
	if path == "" {
		return l
	}
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
// again when enforce mode stops it.
func alertKey(a Alert) string {
	if a.StartedAt.IsZero() || a.Container.ID == "" {
		return ""
	}
	return a.Container.ID + " " + a.StartedAt.UTC().Format("2006-01-02T15:04:05.999999999Z") +
		" " + a.Verdict
}

// first reports whether key is new, and remembers it.
func (l *ledger) first(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[key] {
		return false
	}
	l.remember(key)
	l.append(key)
	return true
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

func (l *ledger) append(key string) {
	if l.path == "" {
		return
	}
	var err error
	if l.lines >= 2*ledgerSize {
		err = l.compact()
	} else {
		err = appendLine(l.path, key)
		l.lines++
	}
	if err != nil && !l.warned {
		l.warned = true
		l.log.Warn("alert ledger not written; starts may be alerted again after a restart",
			"path", l.path, "err", err)
	}
}

func (l *ledger) compact() error {
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(l.order, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	l.lines = len(l.order)
	return os.Rename(tmp, l.path)
}

func appendLine(path, line string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
