package runlog

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestLogFindsLines(t *testing.T) {
	r, w := io.Pipe()
	l := Read(r)
	go func() {
		io.WriteString(w, `{"msg":"finding","container_id":"c1","host_port":80}`+"\n")
		io.WriteString(w, "panic: not JSON\n")
		io.WriteString(w, `{"msg":"finding","container_id":"c2","host_port":53}`+"\n")
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, `{"msg":"container stopped","container_id":"c2"}`+"\n")
		w.Close()
	}()

	line, err := l.Wait("container stopped", map[string]any{"container_id": "c2"}, 5*time.Second)
	if err != nil || line["container_id"] != "c2" {
		t.Fatalf("Wait = %v, %v; want the stop of c2", line, err)
	}
	if n := l.Count("finding", nil); n != 2 {
		t.Errorf("Count(finding) = %d, want 2", n)
	}
	if got := l.Lines("finding", map[string]any{"host_port": 53}); len(got) != 1 ||
		got[0]["container_id"] != "c2" {
		t.Errorf("Lines(finding, host_port 53) = %v, want c2's (a number matches as text)", got)
	}
	if _, i := l.Find(1, "finding", nil); i != 2 {
		t.Errorf("Find from 1 = index %d, want 2", i)
	}
	if n := l.Count("not JSON: panic: not JSON", nil); n != 1 {
		t.Errorf("a line that is not JSON is kept %d times, want once", n)
	}

	<-l.Done()
	_, err = l.Wait("never", nil, 5*time.Second)
	if !errors.Is(err, ErrEnded) {
		t.Errorf("Wait after the end = %v, want ErrEnded", err)
	}
	var dumped []string
	l.Dump(func(f string, a ...any) { dumped = append(dumped, fmt.Sprintf(f, a...)) })
	if len(dumped) != 4 || !strings.Contains(dumped[0], `"container_id":"c1"`) {
		t.Errorf("Dump wrote %q", dumped)
	}
}

func TestWaitTimesOut(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	l := Read(r)
	if _, err := l.Wait("never", nil, 20*time.Millisecond); err == nil ||
		errors.Is(err, ErrEnded) {
		t.Errorf("Wait = %v, want a timeout", err)
	}
}
