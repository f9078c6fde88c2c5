package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portwarden/portwarden/notify"
	"github.com/portwarden/portwarden/watcher"
)

// slackServer is a Slack stand-in: webhook posts on /hook, Web API calls
// on /api/. answer decides each response; requests are recorded.
type slackServer struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   []map[string]any // the message of each request, decoded
	auth     []string
	answer   func(n int, w http.ResponseWriter) bool // true if it answered
	requests int
}

func newSlackServer(t *testing.T, answer func(int, http.ResponseWriter) bool) *slackServer {
	s := &slackServer{answer: answer}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

func (s *slackServer) handle(w http.ResponseWriter, r *http.Request) {
	msg := map[string]any{}
	body, _ := io.ReadAll(r.Body)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(body, &msg)
	} else { // the Web API posts a form, blocks as JSON in a field
		form, _ := url.ParseQuery(string(body))
		for k := range form {
			msg[k] = form.Get(k)
		}
		var blocks any
		json.Unmarshal([]byte(form.Get("blocks")), &blocks)
		msg["blocks"] = blocks
	}
	s.mu.Lock()
	s.requests++
	n := s.requests
	s.bodies = append(s.bodies, msg)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.mu.Unlock()
	if s.answer != nil && s.answer(n, w) {
		return
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		fmt.Fprintf(w, `{"ok":true,"channel":"C1","ts":"1700000000.%06d"}`, n)
		return
	}
	w.Write([]byte("ok"))
}

func (s *slackServer) body(i int) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[i]
}

func stopped(id string) notify.Alert {
	return notify.Alert{
		Host: "node-1", Time: time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC), Mode: "enforce",
		Verdict: notify.VerdictStopped, Action: "stop", Duration: 63 * time.Millisecond,
		Exposure:  70 * time.Millisecond,
		Workload:  watcher.Workload{Kind: "compose-service", Name: "shop/web"},
		Container: watcher.Container{ID: id, Name: "shop-web-1", Image: "nginx:1.25"},
		Findings: []watcher.Finding{{Kind: watcher.KindPrivilegedPort,
			Rules: []string{"V-260924", "V-260929"},
			Binding: &watcher.Binding{HostIP: "0.0.0.0", HostPort: 80, ContainerPort: 8080,
				Protocol: "tcp"}}},
	}
}

// texts returns each block's text and field texts, by block type.
func texts(t *testing.T, msg map[string]any) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	blocks, _ := msg["blocks"].([]any)
	if len(blocks) == 0 {
		t.Fatalf("message has no blocks: %v", msg)
	}
	for _, b := range blocks {
		block := b.(map[string]any)
		typ := block["type"].(string)
		add := func(obj any) {
			o := obj.(map[string]any)
			if o["type"] != "plain_text" {
				t.Errorf("%s block has a %v text object, want plain_text", typ, o["type"])
			}
			out[typ] = append(out[typ], o["text"].(string))
		}
		if txt, ok := block["text"]; ok {
			add(txt)
		}
		for _, f := range asList(block["fields"]) {
			add(f)
		}
		for _, e := range asList(block["elements"]) {
			add(e)
		}
	}
	return out
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestWebhookMessage(t *testing.T) {
	srv := newSlackServer(t, nil)
	n, err := New(Options{WebhookURL: srv.URL + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(context.Background(), stopped("3f2a1b2c3d4e5f60")); err != nil {
		t.Fatal(err)
	}
	got := texts(t, srv.body(0))
	want := map[string][]string{
		"header": {"node-1: Stopped a container on a privileged port"},
		"section": {
			"Container\nshop-web-1 (3f2a1b2c3d4e)", "Image\nnginx:1.25",
			"Bindings\n0.0.0.0:80 → 8080/tcp", "STIG rules\nV-260924, V-260929",
			"Workload\ncompose-service shop/web", "Mode\nenforce",
			"Action: stop. Stopped in 63 ms; the port was open 70 ms after the start.",
		},
		"context": {"2026-12-03T03:00:00Z"},
	}
	for typ, w := range want {
		if !slices.Equal(got[typ], w) {
			t.Errorf("%s texts =\n  %q\nwant\n  %q", typ, got[typ], w)
		}
	}
	if fb := srv.body(0)["text"]; fb != "portwarden on node-1: Stopped a container on a "+
		"privileged port (3f2a1b2c3d4e)" {
		t.Errorf("fallback text = %q", fb)
	}
}

func TestTokenPostsToChannelAndThreadsRepeats(t *testing.T) {
	srv := newSlackServer(t, nil)
	n, err := New(Options{Token: "xoxb-test", Channel: "C1", APIURL: srv.URL + "/api"})
	if err != nil {
		t.Fatal(err)
	}
	first := stopped("aaaaaaaaaaaa")
	repeat := stopped("bbbbbbbbbbbb")
	repeat.Repeats, repeat.RepeatWindow = 14, 10*time.Minute
	for _, a := range []notify.Alert{first, repeat} {
		if err := n.Notify(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	token := srv.auth[0]
	if token == "" { // older clients send it in the form
		token = "Bearer " + fmt.Sprint(srv.body(0)["token"])
	}
	if token != "Bearer xoxb-test" || srv.body(0)["channel"] != "C1" {
		t.Errorf("first post: token %q channel %v, want the token and C1", token,
			srv.body(0)["channel"])
	}
	if ts := srv.body(1)["thread_ts"]; ts != "1700000000.000001" {
		t.Errorf("repeat count posted with thread_ts %v, want the first alert's ts", ts)
	}
	if ctx := texts(t, srv.body(1))["context"]; !slices.Contains(ctx,
		"shop/web started 14 more times in 10m0s") {
		t.Errorf("repeat context = %q", ctx)
	}
}

// Whatever the creator of a container chose shows as literal text.
func TestContainerTextCannotFormatLinkOrMention(t *testing.T) {
	srv := newSlackServer(t, nil)
	n, _ := New(Options{WebhookURL: srv.URL + "/hook"})
	a := stopped("cccccccccccc")
	a.Container.Name = "*bold* _it_ <!here>"
	a.Container.Image = "<https://evil.example|click here>"
	a.Workload.Name = "<!channel>"
	if err := n.Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(srv.body(0))
	for _, bad := range []string{"<!channel>", "<!here>", "<https://evil.example"} {
		if strings.Contains(string(raw), bad) {
			t.Errorf("message carries %q unescaped: %s", bad, raw)
		}
	}
	got := texts(t, srv.body(0))["section"] // texts also checks every object is plain_text
	for _, want := range []string{"Container\n*bold* _it_ &lt;!here&gt; (cccccccccccc)",
		"Image\n&lt;https://evil.example|click here&gt;",
		"Workload\ncompose-service &lt;!channel&gt;"} {
		if !slices.Contains(got, want) {
			t.Errorf("sections %q lack %q", got, want)
		}
	}
	if fb := srv.body(0)["text"].(string); strings.ContainsAny(fb, "*_<") {
		t.Errorf("fallback text %q carries container text", fb)
	}
}

func TestDeliveryErrors(t *testing.T) {
	tests := []struct {
		name          string
		token         bool
		answer        func(int, http.ResponseWriter) bool
		wantPermanent bool
		wantRetryIn   time.Duration
	}{
		{"429 with Retry-After", false, func(_ int, w http.ResponseWriter) bool {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}, false, 7 * time.Second},
		{"500", false, func(_ int, w http.ResponseWriter) bool {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}, false, 0},
		{"webhook revoked (404 no_service)", false, func(_ int, w http.ResponseWriter) bool {
			http.Error(w, "no_service", http.StatusNotFound)
			return true
		}, true, 0},
		{"invalid_auth", true, func(_ int, w http.ResponseWriter) bool {
			w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
			return true
		}, true, 0},
		{"channel_not_found", true, func(_ int, w http.ResponseWriter) bool {
			w.Write([]byte(`{"ok":false,"error":"channel_not_found"}`))
			return true
		}, true, 0},
		{"internal_error", true, func(_ int, w http.ResponseWriter) bool {
			w.Write([]byte(`{"ok":false,"error":"internal_error"}`))
			return true
		}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSlackServer(t, tt.answer)
			opts := Options{WebhookURL: srv.URL + "/hook"}
			if tt.token {
				opts = Options{Token: "xoxb-test", Channel: "C1", APIURL: srv.URL + "/api/"}
			}
			n, _ := New(opts)
			err := n.Notify(context.Background(), stopped("dddddddddddd"))
			if err == nil {
				t.Fatal("Notify = nil, want an error")
			}
			if notify.IsPermanent(err) != tt.wantPermanent {
				t.Errorf("Notify = %v, permanent %v; want %v", err, notify.IsPermanent(err),
					tt.wantPermanent)
			}
			var ra *notify.RetryAfterError
			if got := errors.As(err, &ra); got != (tt.wantRetryIn > 0) ||
				(got && ra.After != tt.wantRetryIn) {
				t.Errorf("Notify = %v, want retry after %s", err, tt.wantRetryIn)
			}
		})
	}
}

func TestHangingSlackTimesOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := newSlackServer(t, func(_ int, w http.ResponseWriter) bool {
		<-release
		return false
	})
	n, _ := New(Options{WebhookURL: srv.URL + "/hook"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := n.Notify(ctx, stopped("eeeeeeeeeeee"))
	if err == nil || notify.IsPermanent(err) {
		t.Errorf("Notify to a hanging server = %v, want a retryable error", err)
	}
}

// With Slack answering 500 for a while, then 200, every alert is delivered
// exactly once and in order, and Send never waits for Slack.
func TestOutageThenRecoveryDeliversOnceInOrder(t *testing.T) {
	srv := newSlackServer(t, func(n int, w http.ResponseWriter) bool {
		if n <= 8 {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	})
	n, _ := New(Options{WebhookURL: srv.URL + "/hook"})
	d := notify.NewDispatcher(notify.Options{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		MinRetry: time.Millisecond, MaxRetry: 10 * time.Millisecond,
	}, notify.Route{Notifier: n, SpoolDir: t.TempDir()})
	var ids []string
	start := time.Now()
	for i := range 5 {
		id := fmt.Sprintf("%012d", i)
		ids = append(ids, id)
		d.Send(stopped(id))
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("Send took %s while Slack failed", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatalf("Close = %v, want everything delivered", err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var delivered []string
	for _, b := range srv.bodies[8:] { // the first 8 were answered 500
		fb := b["text"].(string)
		delivered = append(delivered, fb[len(fb)-13:len(fb)-1])
	}
	if !slices.Equal(delivered, ids) {
		t.Errorf("delivered %q, want %q once each", delivered, ids)
	}
}

// Neither the webhook URL nor the token appears in an error, whatever
// failed.
func TestErrorsHideSecrets(t *testing.T) {
	srv := newSlackServer(t, func(_ int, w http.ResponseWriter) bool {
		http.Error(w, "no_service", http.StatusNotFound)
		return true
	})
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	for _, opts := range []Options{
		{WebhookURL: srv.URL + "/services/T000/B000/s3cr3tw3bh00k"},
		{WebhookURL: closedURL + "/services/T000/B000/s3cr3tw3bh00k"},
		{Token: "xoxb-s3cr3t-t0k3n", Channel: "C1", APIURL: closedURL + "/api/"},
	} {
		n, _ := New(opts)
		err := n.Notify(context.Background(), stopped("ffffffffffff"))
		if err == nil {
			t.Fatal("Notify = nil, want an error")
		}
		for _, secret := range []string{"s3cr3tw3bh00k", "xoxb-s3cr3t-t0k3n"} {
			if strings.Contains(err.Error(), secret) ||
				strings.Contains(fmt.Sprintf("%v", err), secret) {
				t.Errorf("error %q holds a secret", err)
			}
		}
	}
}

func TestOutcomeSaysWhatWasDone(t *testing.T) {
	tests := []struct {
		name  string
		alert notify.Alert
		want  string
	}{
		{"stop failed", notify.Alert{Verdict: notify.VerdictStopFailed, Action: "kill",
			Duration: 30 * time.Second, Err: "kill: context deadline exceeded"},
			"Action: kill. FAILED after 30000 ms: kill: context deadline exceeded. " +
				"The container is still running."},
		{"exited, restart disabled", notify.Alert{Verdict: notify.VerdictExited,
			RestartDisabled: true},
			"Action: none needed: it ran with the port open, and had exited when portwarden " +
				"inspected it. Its restart policy was set to no, so the engine does not start " +
				"it again."},
		{"exited, no restart policy", notify.Alert{Verdict: notify.VerdictExited},
			"Action: none needed: it ran with the port open, and had exited when portwarden " +
				"inspected it."},
		{"alert mode", notify.Alert{Verdict: notify.VerdictAlert, Mode: "alert"},
			"Action: none (mode alert)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outcome(tt.alert); got != tt.want {
				t.Errorf("outcome =\n  %q\nwant\n  %q", got, tt.want)
			}
		})
	}
}
