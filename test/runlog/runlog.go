// Package runlog collects the JSON log of a portwarden process under test
// and finds lines in it, for the integration tests, the fault cases and
// the benchmark alike.
package runlog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// ErrEnded is returned by Wait when the log ended, the process having
// exited, before the line came.
var ErrEnded = errors.New("the log ended")

// Log is what a process has logged so far, one map per JSON line.
type Log struct {
	mu    sync.Mutex
	lines []map[string]any
	added chan struct{} // signalled on each new line
	done  chan struct{} // closed at the end of the log
}

// Read collects the lines of r until it ends. A line that is not JSON is
// kept as a line whose msg says so.
func Read(r io.Reader) *Log {
	l := &Log{added: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				line = map[string]any{"msg": "not JSON: " + sc.Text()}
			}
			l.mu.Lock()
			l.lines = append(l.lines, line)
			l.mu.Unlock()
			select {
			case l.added <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

// Done is closed once the log has ended: the process closed its output.
func (l *Log) Done() <-chan struct{} {
	return l.done
}

// matches reports whether line has message msg and every field of want,
// compared as text so that 53 matches the JSON number 53.
func matches(line map[string]any, msg string, want map[string]any) bool {
	if line["msg"] != msg {
		return false
	}
	for k, v := range want {
		if got, ok := line[k]; !ok || fmt.Sprint(got) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// Find returns the first line from index from on with message msg and the
// fields of want, and its index; nil and -1 if there is none yet.
func (l *Log) Find(from int, msg string, want map[string]any) (map[string]any, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := max(from, 0); i < len(l.lines); i++ {
		if matches(l.lines[i], msg, want) {
			return l.lines[i], i
		}
	}
	return nil, -1
}

// Lines returns every line so far with message msg and the fields of want.
func (l *Log) Lines(msg string, want map[string]any) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range l.lines {
		if matches(line, msg, want) {
			out = append(out, line)
		}
	}
	return out
}

// Count returns how many lines so far have message msg and the fields of
// want.
func (l *Log) Count(msg string, want map[string]any) int {
	return len(l.Lines(msg, want))
}

// Wait waits for a line with message msg and the fields of want, and
// returns it. It fails when the log ends first, or after timeout.
func (l *Log) Wait(msg string, want map[string]any, timeout time.Duration) (map[string]any, error) {
	deadline := time.After(timeout)
	for {
		if line, _ := l.Find(0, msg, want); line != nil {
			return line, nil
		}
		select {
		case <-l.added:
		case <-l.done:
			if line, _ := l.Find(0, msg, want); line != nil {
				return line, nil
			}
			return nil, fmt.Errorf("waiting for %q %v: %w", msg, want, ErrEnded)
		case <-deadline:
			return nil, fmt.Errorf("%q %v not logged within %s", msg, want, timeout)
		}
	}
}

// Dump writes every line so far through logf, for a test that failed.
func (l *Log) Dump(logf func(string, ...any)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		b, _ := json.Marshal(line)
		logf("portwarden: %s", b)
	}
}
