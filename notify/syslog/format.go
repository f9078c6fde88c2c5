package syslog

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portwarden/portwarden/notify"
)

// sdID names portwarden's structured data element. 32473 is the private
// enterprise number that RFC 5612 sets aside for examples and
// documentation; portwarden has none of its own.
const sdID = "portwarden@32473"

// Severities, RFC 5424 section 6.2.1.
const (
	sevError   = 3
	sevWarning = 4
	sevNotice  = 5
	sevInfo    = 6
)

var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
	"news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16,
	"local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22,
	"local7": 23,
}

func severity(a notify.Alert) int {
	switch {
	case a.Verdict == notify.VerdictStopFailed || a.LoopTripped:
		return sevError
	case a.Verdict == notify.VerdictAllowed:
		return sevInfo
	case a.Verdict == notify.VerdictTest:
		return sevNotice
	}
	return sevWarning
}

// text is the human part of a message: what happened to which container
// on which bindings, and the rules broken.
func text(a notify.Alert) string {
	s := fmt.Sprintf("%s: container %s (%s) image %s on %s, breaking %s", a.Verdict,
		a.Container.Name, short(a.Container.ID), a.Container.Image,
		strings.Join(a.Bindings(), " "), strings.Join(a.RuleIDs(), ", "))
	if a.Action != "" {
		s += fmt.Sprintf("; %s took %d ms", a.Action, a.Duration.Milliseconds())
	}
	if a.RestartDisabled {
		s += "; restart policy set to no"
	}
	if a.Err != "" {
		s += "; " + a.Err
	}
	if a.Repeats > 0 {
		s += fmt.Sprintf("; %s started %d more times in %s", a.Workload.Name, a.Repeats,
			a.RepeatWindow)
	}
	if a.Dropped > 0 {
		s += fmt.Sprintf("; %d earlier alerts were dropped", a.Dropped)
	}
	return escapeText(s)
}

// params are the structured data of an alert, in order. Names repeat for
// each binding, as RFC 5424 allows.
func params(a notify.Alert) [][2]string {
	p := [][2]string{
		{"verdict", a.Verdict}, {"mode", a.Mode},
		{"container_id", a.Container.ID}, {"container_name", a.Container.Name},
		{"image", a.Container.Image}, {"workload", a.Workload.String()},
	}
	for _, f := range a.Findings {
		p = append(p, [2]string{"kind", string(f.Kind)})
		if b := f.Binding; b != nil {
			p = append(p, [2]string{"host_ip", b.HostIP}, [2]string{"host_port", b.HostPorts()},
				[2]string{"protocol", b.Protocol})
		}
	}
	p = append(p, [2]string{"rules", strings.Join(a.RuleIDs(), ",")})
	if a.Action != "" {
		p = append(p, [2]string{"action", a.Action},
			[2]string{"duration_ms", strconv.FormatInt(a.Duration.Milliseconds(), 10)})
	}
	if a.Err != "" {
		p = append(p, [2]string{"err", a.Err})
	}
	return p
}

// rfc5424 renders a as an RFC 5424 message.
func rfc5424(a notify.Alert, facility int, host, tag string, pid int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s %s %d %s [%s", facility*8+severity(a),
		a.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), headerField(host, 255),
		headerField(tag, 48), pid, headerField(a.Verdict, 32), sdID)
	for _, kv := range params(a) {
		fmt.Fprintf(&b, ` %s="%s"`, kv[0], escapeParam(kv[1]))
	}
	b.WriteString("] ")
	b.WriteString(text(a))
	return b.String()
}

// rfc3164 renders a in the BSD form. The local socket takes it without a
// host name, as syslog(3) writes it.
func rfc3164(a notify.Alert, facility int, host, tag string, pid int) string {
	stamp := a.Time.Local().Format(time.Stamp)
	if host == "" {
		return fmt.Sprintf("<%d>%s %s[%d]: %s", facility*8+severity(a), stamp, tag, pid, text(a))
	}
	return fmt.Sprintf("<%d>%s %s %s[%d]: %s", facility*8+severity(a), stamp,
		headerField(host, 255), tag, pid, text(a))
}

// headerField makes s a valid RFC 5424 header field: printable US-ASCII
// without spaces, at most n characters, "-" if empty.
func headerField(s string, n int) string {
	var b strings.Builder
	for _, c := range s {
		if c > 32 && c < 127 {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > n {
		out = out[:n]
	}
	if out == "" {
		return "-"
	}
	return out
}

// escapeParam escapes a PARAM-VALUE: '"', '\' and ']' get a backslash, as
// RFC 5424 section 6.3.3 asks, and control characters are written as
// \xNN so that a value cannot break a line or the message.
func escapeParam(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '"' || c == '\\' || c == ']':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 32 || c == 127:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// escapeText writes control characters of the free text as \xNN.
func escapeText(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c < 32 || c == 127 {
			fmt.Fprintf(&b, `\x%02x`, c)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func short(id string) string {
	return id[:min(12, len(id))]
}
