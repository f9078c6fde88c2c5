package syslog

import (
	"strings"
	"testing"
)

// FuzzRFC5424 checks that container text can neither break a line nor end
// the structured data element early.
func FuzzRFC5424(f *testing.F) {
	f.Add(`evil"] [forged@1 x="y`, "img\n<13>1 forged")
	f.Add("web", "nginx:1.25")
	f.Add(`\`, "]")
	f.Fuzz(func(t *testing.T, name, image string) {
		a := testAlert()
		a.Container.Name, a.Container.Image = name, image
		msg := rfc5424(a, 3, "node-1", "portwarden", 1)
		if strings.ContainsAny(msg, "\r\n\x00") {
			t.Fatalf("message holds a line break or NUL: %q", msg)
		}
		// The element ends at the first ] that no backslash escapes.
		start := strings.Index(msg, "[")
		end := start
		for i := start + 1; i < len(msg); i++ {
			if msg[i] == '\\' {
				i++
				continue
			}
			if msg[i] == ']' {
				end = i
				break
			}
		}
		sd := msg[start : end+1]
		if !strings.Contains(sd, `container_name="`+escapeParam(name)+`"`) ||
			!strings.Contains(sd, `image="`+escapeParam(image)+`"`) {
			t.Fatalf("a value escaped its structured data: %q", msg)
		}
	})
}
