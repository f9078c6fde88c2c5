package slack

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/portwarden/portwarden/notify"
)

// headlines name each verdict for on-call.
var headlines = map[string]string{
	notify.VerdictStopped:    "Stopped a container on a privileged port",
	notify.VerdictWouldStop:  "Would stop a container on a privileged port (dry run)",
	notify.VerdictStopFailed: "FAILED to stop a container on a privileged port",
	notify.VerdictExited:     "A container on a privileged port exited before it could be stopped",
	notify.VerdictLoop:       "Enforcement loop: a container keeps coming back",
	notify.VerdictAlert:      "Container on a privileged port",
	notify.VerdictAllowed:    "Allowed container on a privileged port",
	notify.VerdictTest:       "Test alert from portwarden",
	notify.VerdictScaled:     "Scaled a Swarm service on a privileged port to zero",
	notify.VerdictPortGone:   "Removed a privileged published port from a Swarm service",
}

// Message renders a as Block Kit blocks and the plain fallback text that
// notifications show. Everything that came from a container (names,
// images, Compose and Swarm names) is put in plain_text objects with &, <
// and > escaped, so that it shows as written and can neither format the
// message, link anywhere, nor mention anyone.
func Message(a notify.Alert) ([]slack.Block, string) {
	headline := headlines[a.Verdict]
	if headline == "" {
		headline = a.Verdict
	}
	if a.LoopTripped {
		headline = "Enforcement paused: an orchestrator keeps recreating this workload"
	}
	header := fmt.Sprintf("%s: %s", a.Host, headline)

	var bindings, kinds []string
	for _, f := range a.Findings {
		if f.Binding != nil {
			b := f.Binding
			host := b.HostIP
			if host == "" {
				host = "*"
			} else if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
			bindings = append(bindings, fmt.Sprintf("%s:%s → %d/%s", host, b.HostPorts(),
				b.ContainerPort, b.Protocol))
		} else {
			kinds = append(kinds, string(f.Kind))
		}
	}
	if len(kinds) > 0 {
		bindings = append(bindings, strings.Join(kinds, ", "))
	}

	subject := "Container"
	if a.Workload.Kind == "swarm-service" && a.Container.State == "" {
		subject = "Service"
	}
	fields := []*slack.TextBlockObject{
		plain("%s\n%s (%s)", subject, a.Container.Name, short(a.Container.ID)),
		plain("Image\n%s", a.Container.Image),
		plain("Bindings\n%s", strings.Join(bindings, "\n")),
		plain("STIG rules\n%s", strings.Join(a.RuleIDs(), ", ")),
		plain("Workload\n%s", a.Workload.String()),
		plain("Mode\n%s", a.Mode),
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain("%s", truncate(header, headerMax))),
		slack.NewSectionBlock(nil, fields, nil),
		slack.NewSectionBlock(plain("%s", outcome(a)), nil, nil),
	}
	var notes []slack.MixedElement
	notes = append(notes, plain("%s", a.Time.UTC().Format(time.RFC3339)))
	if a.Repeats > 0 {
		notes = append(notes, plain("%s started %d more times in %s", a.Workload.Name, a.Repeats,
			a.RepeatWindow))
	}
	if a.Dropped > 0 {
		notes = append(notes, plain("%d earlier alerts were dropped: the spool was full",
			a.Dropped))
	}
	blocks = append(blocks, slack.NewContextBlock("", notes...))

	// The fallback is mrkdwn-parsed in notifications, so it carries
	// nothing a container's creator chose.
	fallback := escape(fmt.Sprintf("portwarden on %s: %s (%s)", a.Host, headline,
		short(a.Container.ID)))
	return blocks, fallback
}

func outcome(a notify.Alert) string {
	switch a.Verdict {
	case notify.VerdictStopped:
		s := fmt.Sprintf("Action: %s. Stopped in %d ms", a.Action, a.Duration.Milliseconds())
		if a.Exposure > 0 {
			s += fmt.Sprintf("; the port was open %d ms after the start", a.Exposure.Milliseconds())
		}
		if a.Err != "" {
			s += ". But: " + a.Err
		}
		return s + "."
	case notify.VerdictStopFailed:
		return fmt.Sprintf("Action: %s. FAILED after %d ms: %s. The container is still running.",
			a.Action, a.Duration.Milliseconds(), a.Err)
	case notify.VerdictExited:
		s := "Action: none needed: it ran with the port open, and had exited when " +
			"portwarden inspected it"
		if a.RestartDisabled {
			s += ". Its restart policy was set to no, so the engine does not start it again"
		}
		if a.Err != "" {
			s += ". But: " + a.Err
		}
		return s + "."
	case notify.VerdictWouldStop:
		return fmt.Sprintf("Action: none (dry run). Enforce mode would %s it.", a.Action)
	case notify.VerdictLoop:
		return "Action: none. The loop breaker holds this workload: it was stopped too " +
			"often. Fix it at its orchestrator; every start is still alerted."
	case notify.VerdictAllowed:
		return "Action: none. An allow entry matches: " + allowedBy(a)
	case notify.VerdictTest:
		return "Action: none. portwarden notify test sent this."
	case notify.VerdictScaled:
		return fmt.Sprintf("Action: scaled to 0 replicas in %d ms; the former count is in the "+
			"label io.portwarden.previous-replicas.", a.Duration.Milliseconds())
	case notify.VerdictPortGone:
		return fmt.Sprintf("Action: the privileged published ports were taken out of the "+
			"service's spec in %d ms.", a.Duration.Milliseconds())
	}
	return "Action: none (mode " + a.Mode + ")."
}

func allowedBy(a notify.Alert) string {
	var names []string
	for _, f := range a.Findings {
		if f.AllowedBy != "" && !slices.Contains(names, f.AllowedBy) {
			names = append(names, f.AllowedBy)
		}
	}
	return strings.Join(names, ", ")
}

// Slack's limits on a header and on any other text object, in characters,
// less room for escaping.
const (
	headerMax = 120
	textMax   = 1800
)

// plain is a plain_text object of the formatted text, cut to Slack's
// limit and escaped, with emoji codes left as written.
func plain(format string, args ...any) *slack.TextBlockObject {
	text := truncate(fmt.Sprintf(format, args...), textMax)
	return slack.NewTextBlockObject(slack.PlainTextType, escape(text), false, false)
}

// escape replaces the three characters Slack reads as control characters.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func short(id string) string {
	return id[:min(12, len(id))]
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
