package notify

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// spool is a bounded, ordered queue of alerts for one notifier. It keeps
// every alert in memory and, when it has a folder, each also in a file of
// its own, written crash-safely, so that a restart loses none. When full,
// it drops the oldest and counts them.
type spool struct {
	dir string // "" for memory only
	max int
	log *slog.Logger

	mu       sync.Mutex
	next     uint64
	entries  []entry
	dropped  int  // dropped since the last delivery said so
	diskFail bool // the last write failed; warned once
	ready    chan struct{}
}

type entry struct {
	seq   uint64
	alert Alert
}

const (
	spoolExt      = ".json"
	droppedFile   = "dropped"
	corruptSuffix = ".corrupt"
)

// openSpool loads what dir holds from an earlier run. A file that cannot
// be decoded is moved aside with a warning, and a folder that cannot be
// made or read is warned about and retried at each write: neither stops
// the daemon.
func openSpool(dir string, limit int, log *slog.Logger) *spool {
	s := &spool{dir: dir, max: limit, log: log, ready: make(chan struct{}, 1)}
	if dir == "" {
		return s
	}
	names, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		s.diskFail = true
		log.Warn("spool unusable; alerts kept in memory until it works", "dir", dir, "err", err)
		return s
	}
	for _, de := range names {
		name := de.Name()
		seq, ok := spoolSeq(name)
		if !ok {
			continue
		}
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		var a Alert
		if err == nil {
			err = json.Unmarshal(data, &a)
		}
		if err != nil {
			if rerr := os.Rename(path, path+corruptSuffix); rerr != nil {
				log.Warn("corrupt spool file could not be moved aside", "path", path,
					"err", err, "rename_err", rerr)
				continue
			}
			log.Warn("corrupt spool file moved aside", "path", path, "err", err)
			continue
		}
		s.entries = append(s.entries, entry{seq: seq, alert: a})
		s.next = max(s.next, seq+1)
	}
	slices.SortFunc(s.entries, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	if data, err := os.ReadFile(filepath.Join(dir, droppedFile)); err == nil {
		s.dropped, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	if len(s.entries) > 0 {
		s.ready <- struct{}{}
	}
	return s
}

func spoolSeq(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, spoolExt)
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(base, 10, 64)
	return seq, err == nil
}

// push appends a. A write that fails keeps the alert in memory and warns
// once, until a write succeeds again.
func (s *spool) push(a Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) >= s.max {
		s.removeLocked(s.entries[0].seq)
		s.dropped++
		s.saveDroppedLocked()
	}
	e := entry{seq: s.next, alert: a}
	s.next++
	s.entries = append(s.entries, e)
	if s.dir != "" {
		err := writeFileSync(s.path(e.seq), a)
		if errors.Is(err, fs.ErrNotExist) && os.MkdirAll(s.dir, 0o700) == nil {
			err = writeFileSync(s.path(e.seq), a)
		}
		if err != nil {
			if !s.diskFail {
				s.log.Warn("spool write failed; alerts kept in memory until it works",
					"dir", s.dir, "err", err)
			}
			s.diskFail = true
		} else if s.diskFail {
			s.diskFail = false
			s.log.Info("spool writable again", "dir", s.dir)
		}
	}
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// peek returns the oldest alert, with how many were dropped before it.
func (s *spool) peek() (entry, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 {
		return entry{}, 0, false
	}
	return s.entries[0], s.dropped, true
}

// done removes the entry seq after it was delivered (or refused for good),
// and forgets the dropped count its delivery reported.
func (s *spool) done(seq uint64, reportedDropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(seq)
	if reportedDropped > 0 {
		s.dropped -= min(reportedDropped, s.dropped)
		s.saveDroppedLocked()
	}
}

func (s *spool) removeLocked(seq uint64) {
	i := slices.IndexFunc(s.entries, func(e entry) bool { return e.seq == seq })
	if i < 0 {
		return
	}
	s.entries = slices.Delete(s.entries, i, i+1)
	if s.dir != "" {
		if err := os.Remove(s.path(seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("removing delivered alert from spool", "err", err)
		}
	}
}

func (s *spool) saveDroppedLocked() {
	if s.dir == "" {
		return
	}
	path := filepath.Join(s.dir, droppedFile)
	if s.dropped == 0 {
		os.Remove(path)
		return
	}
	if err := writeFileSync(path, s.dropped); err != nil {
		s.log.Warn("the count of dropped alerts was not saved", "path", path, "err", err)
	}
}

func (s *spool) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

func (s *spool) path(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, spoolExt))
}

// writeFileSync writes v as JSON to path crash-safely: a temporary file in
// the same folder, fsync, rename, fsync of the folder.
func writeFileSync(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
