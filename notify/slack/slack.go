// Package slack is the notifier that posts alerts to Slack, through an
// incoming webhook or with a bot token, as Block Kit messages.
package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/portwarden/portwarden/notify"
	"github.com/portwarden/portwarden/watcher"
)

// Options say where to post. Set WebhookURL, or Token and Channel.
type Options struct {
	WebhookURL string
	Token      string
	Channel    string
	APIURL     string       // the Web API base for a token, such as GovSlack's; "" for Slack's
	HTTPClient *http.Client // nil for one with a 30 s timeout
}

// Notifier posts alerts to Slack.
type Notifier struct {
	opts Options
	http *http.Client
	api  *slack.Client // nil with a webhook

	mu      sync.Mutex
	threads map[watcher.Workload]string // with a token: each workload's last alert
}

// New returns a Notifier for opts.
func New(opts Options) (*Notifier, error) {
	switch {
	case opts.WebhookURL == "" && opts.Token == "":
		return nil, errors.New("slack: a webhook URL or a bot token is needed")
	case opts.Token != "" && opts.Channel == "":
		return nil, errors.New("slack: a bot token needs a channel")
	}
	n := &Notifier{opts: opts, http: opts.HTTPClient, threads: map[watcher.Workload]string{}}
	if n.http == nil {
		n.http = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Token != "" {
		apiOpts := []slack.Option{slack.OptionHTTPClient(n.http)}
		if opts.APIURL != "" {
			apiOpts = append(apiOpts, slack.OptionAPIURL(strings.TrimSuffix(opts.APIURL, "/")+"/"))
		}
		n.api = slack.New(opts.Token, apiOpts...)
	}
	return n, nil
}

// Name returns "slack".
func (n *Notifier) Name() string { return "slack" }

// Notify posts a. With a token, a count of repeated starts goes into the
// thread of the workload's last alert.
func (n *Notifier) Notify(ctx context.Context, a notify.Alert) error {
	blocks, fallback := Message(a)
	if n.api == nil {
		msg := &slack.WebhookMessage{Text: fallback, Blocks: &slack.Blocks{BlockSet: blocks}}
		err := slack.PostWebhookCustomHTTPContext(ctx, n.opts.WebhookURL, n.http, msg)
		return classify(n.scrub(err))
	}

	opts := []slack.MsgOption{slack.MsgOptionBlocks(blocks...),
		slack.MsgOptionText(fallback, false), slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl()}
	n.mu.Lock()
	thread, threaded := n.threads[a.Workload]
	n.mu.Unlock()
	if a.Repeats > 0 && threaded {
		opts = append(opts, slack.MsgOptionTS(thread))
	}
	_, ts, err := n.api.PostMessageContext(ctx, n.opts.Channel, opts...)
	if err != nil {
		return classify(n.scrub(err))
	}
	if a.Repeats == 0 {
		n.mu.Lock()
		n.threads[a.Workload] = ts
		n.mu.Unlock()
	}
	return nil
}

// scrub hides the webhook URL and the token in err's text: an HTTP error
// names the URL it failed on, and a webhook's URL is its secret.
func (n *Notifier) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, secret := range []string{n.opts.WebhookURL, n.opts.Token} {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "<redacted>")
		}
	}
	if u, perr := url.Parse(n.opts.WebhookURL); perr == nil && u.Path != "" {
		msg = strings.ReplaceAll(msg, u.Path, "/<redacted>")
	}
	return scrubbed{msg: msg, err: err}
}

// scrubbed is an error whose text has its secrets hidden; errors.As still
// finds what it wraps.
type scrubbed struct {
	msg string
	err error
}

// Error returns the text with its secrets hidden.
func (s scrubbed) Error() string { return s.msg }

// Unwrap returns the original error.
func (s scrubbed) Unwrap() error { return s.err }

// retryable are the Web API errors that a later try can mend.
var retryable = []string{"ratelimited", "internal_error", "fatal_error",
	"service_unavailable", "request_timeout"}

// classify says whether a failure is worth retrying: a 429 after its
// Retry-After, a 5xx, a timeout or a network error with backoff; any other
// 4xx and an API error such as invalid_auth never.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var limited *slack.RateLimitedError
	var status slack.StatusCodeError
	var api slack.SlackErrorResponse
	switch {
	case errors.As(err, &limited):
		return &notify.RetryAfterError{After: limited.RetryAfter, Err: err}
	case errors.As(err, &status):
		if status.Retryable() {
			return fmt.Errorf("slack: %w", err)
		}
		return notify.Permanent(fmt.Errorf("slack: %w", err))
	case errors.As(err, &api):
		if slices.Contains(retryable, api.Err) {
			return fmt.Errorf("slack: %w", err)
		}
		return notify.Permanent(fmt.Errorf("slack: %w", err))
	}
	return fmt.Errorf("slack: %w", err)
}
