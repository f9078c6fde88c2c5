package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/portwarden/portwarden/watcher"
)

// report is the evidence that one check leaves: what was checked, where,
// when, under which policy, and what was found.
type report struct {
	Host      string                  `json:"host"`
	CheckedAt time.Time               `json:"checked_at"`
	Scope     string                  `json:"scope"`            // running, all or files
	Engine    *watcher.EngineInfo     `json:"engine,omitempty"` // none for files
	Files     []string                `json:"files,omitempty"`  // the Compose files checked
	Policy    reportPolicy            `json:"policy"`
	Rules     map[string]watcher.Rule `json:"rules"`
	Findings  []watcher.Finding       `json:"findings"`
	Services  *serviceSection         `json:"services,omitempty"` // on a Swarm manager
	Summary   summary                 `json:"summary"`
}

// serviceSection lists the findings of a Swarm manager's services.
type serviceSection struct {
	Listed   int               `json:"services_listed"`
	Findings []watcher.Finding `json:"findings"`
}

// reportPolicy is what of the policy an auditor needs to read a report.
type reportPolicy struct {
	PrivilegedBelow int            `json:"privileged_below"`
	HostNetwork     watcher.Action `json:"host_network"`
	WildcardBind    watcher.Action `json:"wildcard_bind"`
	Allow           []string       `json:"allow"` // the allow entries' names
}

type summary struct {
	ContainersListed    int                  `json:"containers_listed"`
	ContainersInspected int                  `json:"containers_inspected"`
	Findings            int                  `json:"findings"`
	Allowed             int                  `json:"allowed"`
	Violations          int                  `json:"violations"` // findings not allowed
	ByKind              map[watcher.Kind]int `json:"by_kind"`    // violations per kind
	Compliant           bool                 `json:"compliant"`
}

func newReport(host string, at time.Time, engine *watcher.EngineInfo, p watcher.Policy,
	all bool, res watcher.ScanResult) report {
	r := report{
		Host:      host,
		CheckedAt: at.Truncate(time.Second),
		Scope:     "running",
		Engine:    engine,
		Policy: reportPolicy{
			PrivilegedBelow: p.PrivilegedBelow,
			HostNetwork:     p.HostNetwork,
			WildcardBind:    p.WildcardBind,
			Allow:           []string{},
		},
		Rules:    watcher.Rules,
		Findings: slices.Clip(append([]watcher.Finding{}, res.Findings...)),
		Summary: summary{
			ContainersListed:    res.Listed,
			ContainersInspected: res.Inspected,
			Findings:            len(res.Findings),
			ByKind:              map[watcher.Kind]int{},
		},
	}
	if all {
		r.Scope = "all"
	}
	for _, a := range p.Allow {
		r.Policy.Allow = append(r.Policy.Allow, a.Name)
	}
	for _, f := range res.Findings {
		if f.Allowed {
			r.Summary.Allowed++
			continue
		}
		r.Summary.Violations++
		r.Summary.ByKind[f.Kind]++
	}
	r.Summary.Compliant = r.Summary.Violations == 0
	return r
}

// addServices adds the services' findings to r and its summary.
func (r *report) addServices(s *serviceScan) {
	if s == nil {
		return
	}
	r.Services = &serviceSection{Listed: s.listed,
		Findings: append([]watcher.Finding{}, s.findings...)}
	for _, f := range s.findings {
		r.Summary.Findings++
		if f.Allowed {
			r.Summary.Allowed++
			continue
		}
		r.Summary.Violations++
		r.Summary.ByKind[f.Kind]++
	}
	r.Summary.Compliant = r.Summary.Violations == 0
}

func (r report) write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.writeText(w)
}

func (r report) writeText(w io.Writer) error {
	fmt.Fprintf(w, "portwarden check on %s at %s\n", printable(r.Host),
		r.CheckedAt.Format(time.RFC3339))
	if r.Engine == nil {
		fmt.Fprintf(w, "Compose files %s", strings.Join(r.Files, ", "))
	} else {
		fmt.Fprintf(w, "engine %s (API %s) at %s: %s containers, %d listed, %d inspected",
			r.Engine.Version, r.Engine.APIVersion, r.Engine.Host, r.Scope,
			r.Summary.ContainersListed, r.Summary.ContainersInspected)
	}
	if r.Services != nil {
		fmt.Fprintf(w, "; Swarm manager: %d services", r.Services.Listed)
	}
	fmt.Fprint(w, "\n\n")

	all := r.Findings
	if r.Services != nil {
		all = append(slices.Clip(all), r.Services.Findings...)
	}
	if len(all) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tCONTAINER\tSTATE\tIMAGE\tBINDING\tSOURCE\tRULES\tALLOWED BY")
		for _, f := range all {
			binding, allowedBy := "-", "-"
			if f.Binding != nil {
				binding = f.Binding.String()
			}
			if f.Allowed {
				allowedBy = f.AllowedBy
			}
			who := fmt.Sprintf("%s (%s)", printable(f.Name), shortID(f.ID))
			state, image := f.State, f.Image
			if c := f.Compose; c != nil {
				who = fmt.Sprintf("service %s ports[%d]", printable(c.Service), c.Port)
				if c.Port < 0 {
					who = fmt.Sprintf("service %s", printable(c.Service))
				}
				state = "-"
			}
			if s := f.Service; s != nil {
				who = fmt.Sprintf("service %s (%s)", printable(s.Name), shortID(s.ID))
				state, image = s.Mode, s.Image
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				f.Kind, who, state, printable(image), binding, f.Source,
				strings.Join(f.Rules, ","), printable(allowedBy))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}

	_, err := fmt.Fprintln(w, r.verdict())
	return err
}

func (r report) verdict() string {
	s := r.Summary
	if s.Compliant {
		return fmt.Sprintf("compliant: no violations (%d allowed); "+
			"V-260924 (CNTR-MK-000570) and V-260929 (CNTR-MK-000650) hold", s.Allowed)
	}
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(s.ByKind)) {
		kinds = append(kinds, fmt.Sprintf("%d %s", s.ByKind[k], k))
	}
	return fmt.Sprintf("NOT COMPLIANT: %d violations (%s), %d allowed",
		s.Violations, strings.Join(kinds, ", "), s.Allowed)
}

// printable shows text that came from a container, whose creator chose it,
// with anything that could steer a terminal escaped.
func printable(s string) string {
	for _, c := range s {
		if !unicode.IsPrint(c) {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

func shortID(id string) string {
	return id[:min(12, len(id))]
}
