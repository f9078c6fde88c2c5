package lognotify

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/portwarden/portwarden/notify"
	"github.com/portwarden/portwarden/watcher"
)

func TestNotifyWritesOneLine(t *testing.T) {
	tests := []struct {
		name      string
		alert     notify.Alert
		wantLevel string
		wantMsg   string
		want      map[string]any
	}{
		{
			name: "stopped",
			alert: notify.Alert{
				Host: "node-1", Mode: "enforce", Verdict: notify.VerdictStopped,
				Action: "stop", Duration: 63 * time.Millisecond, Exposure: 70 * time.Millisecond,
				Workload:  watcher.Workload{Kind: "container", Name: "web"},
				Container: watcher.Container{ID: "c1", Name: "web", Image: "nginx"},
				StartedAt: time.Date(2026, 12, 3, 19, 4, 5, 123456789, time.FixedZone("", 3600)),
				Findings: []watcher.Finding{
					{Kind: watcher.KindPrivilegedPort, Rules: []string{"V-260924", "V-260929"},
						Binding: &watcher.Binding{HostIP: "0.0.0.0", HostPort: 80,
							ContainerPort: 8080, Protocol: "tcp"}},
					{Kind: watcher.KindPrivilegedPort, Rules: []string{"V-260924", "V-260929"},
						Binding: &watcher.Binding{HostIP: "::", HostPort: 80,
							ContainerPort: 8080, Protocol: "tcp"}},
				},
			},
			wantLevel: "WARN", wantMsg: "alert",
			want: map[string]any{"verdict": "stopped", "host": "node-1", "container_id": "c1",
				"container_name": "web", "image": "nginx", "workload": "container web",
				"bindings": "0.0.0.0:80->8080/tcp [::]:80->8080/tcp",
				"rules":    "V-260924,V-260929", "action": "stop", "duration_ms": 63.0,
				"exposure_ms": 70.0, "started_at": "2026-12-03T18:04:05.123456789Z"},
		},
		{
			name: "loop tripped",
			alert: notify.Alert{Verdict: notify.VerdictLoop, LoopTripped: true,
				Findings: []watcher.Finding{{Kind: watcher.KindHostNetwork,
					Rules: []string{"V-260913"}}}},
			wantLevel: "ERROR",
			wantMsg:   "alert: an orchestrator keeps recreating this workload; enforcement paused",
			want:      map[string]any{"verdict": "enforcement-loop", "bindings": "host-network"},
		},
		{
			name:      "allowed",
			alert:     notify.Alert{Verdict: notify.VerdictAllowed},
			wantLevel: "INFO", wantMsg: "alert",
			want: map[string]any{"verdict": "allowed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			n := New(slog.New(slog.NewJSONHandler(&buf, nil)))
			if err := n.Notify(context.Background(), tt.alert); err != nil {
				t.Fatal(err)
			}
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("not one JSON line: %q", buf.String())
			}
			if line["level"] != tt.wantLevel || line["msg"] != tt.wantMsg {
				t.Errorf("level, msg = %v, %v; want %s, %s", line["level"], line["msg"],
					tt.wantLevel, tt.wantMsg)
			}
			for k, v := range tt.want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v", k, line[k], v)
				}
			}
		})
	}
}
