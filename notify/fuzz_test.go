package notify

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// FuzzSpool feeds spool files from disk to a new spool: a file it cannot
// decode is moved aside, and nothing panics or is lost silently.
func FuzzSpool(f *testing.F) {
	f.Add([]byte(`{"verdict":"stopped","container":{"container_id":"c1"},"findings":[]}`))
	f.Add([]byte("{not json"))
	f.Add([]byte(""))
	f.Add([]byte(`{"time":"not a time"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, fmt.Sprintf("%020d.json", 1))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s := openSpool(dir, 10, slog.New(slog.NewTextHandler(io.Discard, nil)))
		_, err := os.Stat(path + corruptSuffix)
		moved := err == nil
		if kept := s.len(); kept+btoi(moved) != 1 {
			t.Fatalf("spool kept %d and moved aside %v: the file is lost", kept, moved)
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
