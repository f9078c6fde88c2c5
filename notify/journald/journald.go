// Package journald writes portwarden's log, alerts included, to the
// systemd journal with native fields: a PRIORITY, a MESSAGE_ID for each
// kind of event that the catalog explains, and PORTWARDEN_* fields such as
// PORTWARDEN_CONTAINER_ID and PORTWARDEN_HOST_PORT.
package journald

import (
	"context"

	"log/slog"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// The MESSAGE_IDs of portwarden's events; catalog.txt explains each.
const (
	IDFinding    = "1482147d6b7a42fc9f86ea98e0eeb0d3"
	IDStop       = "553b513d904a457e86019a3fc7a6d20f"
	IDStopFailed = "277b42b83a6d415881695a333d1aecb1"
	IDLoop       = "14257fc011b64449845dd04cae03be3f"
	IDStreamLost = "9cfd6f3f7fda4cdb9df427e024f0dde5"
)

// messageID returns the MESSAGE_ID of a log record, by its message and,
// for an alert, its verdict.
func messageID(msg, verdict string) string {
	switch msg {
	case "finding", "allowed finding":
		return IDFinding
	case "container stopped":
		return IDStop
	case "stop failed":
		return IDStopFailed
	case "loop breaker holds this workload; not stopped":
		return IDLoop
	case "stream lost":
		return IDStreamLost
	}
	if strings.HasPrefix(msg, "alert") {
		switch verdict {
		case "stopped", "scaled-to-zero", "port-removed":
			return IDStop
		case "stop-failed":
			return IDStopFailed
		case "enforcement-loop":
			return IDLoop
		}
		return IDFinding
	}
	return ""
}

// Handler is a slog.Handler that sends each record to the journal. A
// record the journal refuses is written to Fallback instead, and the
// first such failure is said there once.
type Handler struct {
	Level    slog.Leveler
	Fallback slog.Handler
	attrs    []slog.Attr
	groups   string
	warned   *sync.Once
	send     func(string, journal.Priority, map[string]string) error
}

// NewHandler returns a Handler that sends to the journal at level and
// above, and falls back to fallback.
func NewHandler(level slog.Leveler, fallback slog.Handler) *Handler {
	return &Handler{Level: level, Fallback: fallback, warned: &sync.Once{}, send: journal.Send}
}

// Enabled reports whether records at l are sent.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.Level.Level()
}

// WithAttrs returns a Handler that adds attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), attrs...)
	c.Fallback = h.Fallback.WithAttrs(attrs)
	return &c
}

// WithGroup returns a Handler that prefixes the keys that follow with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	c := *h
	c.groups += name + "_"
	c.Fallback = h.Fallback.WithGroup(name)
	return &c
}

// Handle sends r to the journal.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	vars := map[string]string{"SYSLOG_IDENTIFIER": "portwarden"}
	add := func(prefix string, a slog.Attr) {
		addField(vars, prefix, a)
	}
	for _, a := range h.attrs {
		add(h.groups, a)
	}
	r.Attrs(func(a slog.Attr) bool {
		add(h.groups, a)
		return true
	})
	if id := messageID(r.Message, vars["PORTWARDEN_VERDICT"]); id != "" {
		vars["MESSAGE_ID"] = id
	}
	if err := h.send(r.Message, priority(r.Level), vars); err != nil {
		h.warned.Do(func() {
			warn := slog.NewRecord(r.Time, slog.LevelError,
				"journal write failed; logging to stderr instead", 0)
			warn.AddAttrs(slog.String("err", err.Error()))
			_ = h.Fallback.Handle(ctx, warn) // the record's own fallback below says the rest
		})
		return h.Fallback.Handle(ctx, r)
	}
	return nil
}

// addField adds a to vars as PORTWARDEN_KEY, groups flattened with "_".
func addField(vars map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			addField(vars, prefix+a.Key+"_", g)
		}
		return
	}
	vars["PORTWARDEN_"+fieldName(prefix+a.Key)] = v.String()
}

// fieldName makes key a journal field name: upper case letters, digits and
// underscores.
func fieldName(key string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(key) {
		if (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}

// UnderJournal reports whether stderr is connected to the journal, as it
// is for a systemd service (JOURNAL_STREAM).
func UnderJournal() bool {
	ok, err := journal.StderrIsJournalStream()
	return err == nil && ok
}
