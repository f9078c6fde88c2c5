package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestResumePoint(t *testing.T) {
	at := time.Date(2026, 12, 3, 3, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name    string
		file    string // "" for none
		host    string
		want    time.Time
		wantErr string
	}{
		{name: "none saved", host: "unix:///run/docker.sock"},
		{name: "saved for this engine", host: "unix:///run/docker.sock",
			file: `{"host":"unix:///run/docker.sock","until":"2026-12-03T03:00:00.123456789Z"}`,
			want: at},
		{name: "another engine's", host: "tcp://10.0.0.2:2376",
			file: `{"host":"unix:///run/docker.sock","until":"2026-12-03T03:00:00.123456789Z"}`},
		{name: "garbage", host: "unix:///run/docker.sock", file: `{"host":`,
			wantErr: "decoding "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" {
				if err := os.WriteFile(resumePath(dir), []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := loadResume(dir, tt.host)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) ||
					!strings.Contains(err.Error(), resumePath(dir)) {
					t.Errorf("loadResume error = %v, want %q naming the file", err, tt.wantErr)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("loadResume = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestSaveResumeRoundTrips(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // made on the way
	at := time.Date(2026, 12, 3, 4, 5, 6, 7, time.FixedZone("", 3600))
	if err := saveResume(dir, "unix:///run/docker.sock", at); err != nil {
		t.Fatal(err)
	}
	got, err := loadResume(dir, "unix:///run/docker.sock")
	if err != nil || !got.Equal(at) {
		t.Errorf("loadResume after save = %v, %v; want %v", got, err, at)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %d files after a save, want only the resume point", len(entries))
	}

	notDir := filepath.Join(dir, "resume") // a file where a directory should be
	if err := saveResume(notDir, "unix:///run/docker.sock", at); err == nil {
		t.Error("saveResume into a path that is a file succeeded")
	}
}
