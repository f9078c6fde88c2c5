package slack

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/portwarden/portwarden/watcher"
)

// FuzzMessage checks that nothing a container's creator chooses reaches
// Slack unescaped: no text object holds a raw < or >, none is mrkdwn, and
// the fallback text holds none of it.
func FuzzMessage(f *testing.F) {
	f.Add("<!channel>", "<https://evil.example|click here>", "*bold*")
	f.Add("web", "nginx:1.25", "shop/web")
	f.Add("&lt;!here&gt;", "a\nb", "<@U123>")
	f.Fuzz(func(t *testing.T, name, image, workload string) {
		a := stopped("0123456789ab")
		a.Container.Name, a.Container.Image = name, image
		a.Workload = watcher.Workload{Kind: "compose-service", Name: workload}
		blocks, fallback := Message(a)
		raw, err := json.Marshal(blocks)
		if err != nil {
			t.Fatal(err)
		}
		var parsed []map[string]any
		json.Unmarshal(raw, &parsed)
		var check func(v any)
		check = func(v any) {
			switch o := v.(type) {
			case map[string]any:
				if text, ok := o["text"].(string); ok && o["type"] != nil {
					if o["type"] != "plain_text" {
						t.Fatalf("a %v text object", o["type"])
					}
					if strings.ContainsAny(text, "<>") {
						t.Fatalf("text object %q holds < or >", text)
					}
				}
				for _, x := range o {
					check(x)
				}
			case []any:
				for _, x := range o {
					check(x)
				}
			}
		}
		check(parsed)
		for _, s := range []string{name, image, workload} {
			if len(s) > 3 && strings.Contains(fallback, s) && strings.ContainsAny(s, "<>&*_") {
				t.Fatalf("fallback %q carries container text %q", fallback, s)
			}
		}
	})
}
