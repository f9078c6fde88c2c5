package watcher

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Action says what becomes of a finding of one kind.
type Action string

// The actions a policy can take on a kind of finding.
const (
	// ActionIgnore makes no finding.
	ActionIgnore Action = "ignore"
	// ActionReport makes a finding that is reported and never enforced.
	ActionReport Action = "report"
	// ActionEnforce makes a finding that enforce mode acts on.
	ActionEnforce Action = "enforce"
)

// DefaultPrivilegedBelow is the first port that is not privileged.
const DefaultPrivilegedBelow = 1024

// Policy is what detection and the allow list need to know. The zero value
// is not useful; callers build one from validated configuration.
type Policy struct {
	PrivilegedBelow int    // host ports below this are privileged
	HostNetwork     Action // what a host-network container is
	WildcardBind    Action // what a binding on every interface is
	Allow           []AllowRule
}

// PortRange is an inclusive range of ports with an optional protocol; an
// empty protocol matches every protocol.
type PortRange struct {
	First, Last int
	Protocol    string
}

// String returns r as it is written in a config: "443/tcp", "80",
// "8000-8010/udp".
func (r PortRange) String() string {
	s := strconv.Itoa(r.First)
	if r.Last != r.First {
		s += "-" + strconv.Itoa(r.Last)
	}
	if r.Protocol != "" {
		s += "/" + r.Protocol
	}
	return s
}

// Covers reports whether every host port of b lies in r, on r's protocol.
func (r PortRange) Covers(b Binding) bool {
	if r.Protocol != "" && r.Protocol != b.Protocol {
		return false
	}
	last := max(b.HostPortEnd, b.HostPort)
	return r.First <= b.HostPort && last <= r.Last
}

// ParsePortRange parses a port spec: a port or a range of ports, each from
// 1 to 65535, with an optional protocol of tcp, udp or sctp: "443/tcp",
// "80", "8000-8010/udp".
func ParsePortRange(spec string) (PortRange, error) {
	ports, proto, hasProto := strings.Cut(spec, "/")
	if hasProto {
		switch proto {
		case "tcp", "udp", "sctp":
		default:
			return PortRange{}, fmt.Errorf("protocol %q is not tcp, udp or sctp", proto)
		}
	}
	first, last, isRange := strings.Cut(ports, "-")
	lo, err := parsePort(first)
	if err != nil {
		return PortRange{}, err
	}
	hi := lo
	if isRange {
		if hi, err = parsePort(last); err != nil {
			return PortRange{}, err
		}
		if hi < lo {
			return PortRange{}, fmt.Errorf("range %d-%d ends before it starts", lo, hi)
		}
	}
	return PortRange{First: lo, Last: hi, Protocol: proto}, nil
}

// errPortRange is returned for a port number outside 1-65535.
var errPortRange = errors.New("port out of range 1-65535")

func parsePort(s string) (int, error) {
	if s == "" {
		return 0, errors.New("missing port number")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a port number", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, errPortRange
	}
	return n, nil
}

// Glob is a shell pattern as path.Match reads it: '*' matches any run of
// characters but '/', '?' one character, and [a-z] one of a class.
type Glob string

// ParseGlob returns pattern as a Glob, or an error if it is malformed.
func ParseGlob(pattern string) (Glob, error) {
	if pattern == "" {
		return "", errors.New("empty pattern")
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return "", fmt.Errorf("malformed pattern: %w", err)
	}
	return Glob(pattern), nil
}

// Match reports whether s matches g. A malformed glob matches nothing; use
// ParseGlob to refuse one.
func (g Glob) Match(s string) bool {
	ok, err := path.Match(string(g), s)
	return err == nil && ok
}

// Enforces reports whether enforce mode acts on a finding of kind k. A
// privileged port always is; the other kinds only when their action is
// enforce.
func (p Policy) Enforces(k Kind) bool {
	switch k {
	case KindPrivilegedPort:
		return true
	case KindHostNetwork:
		return p.HostNetwork == ActionEnforce
	case KindWildcardBind:
		return p.WildcardBind == ActionEnforce
	}
	return false
}
