package watcher

import (
	"strings"

	"github.com/distribution/reference"
)

// AllowRule exempts the findings that every one of its selectors matches.
// An empty selector matches everything, so a rule needs at least one that
// is not Labels: whoever starts a container chooses its labels.
type AllowRule struct {
	Name       string
	Reason     string
	Containers []Glob          // container names, one must match
	Images     []ImageSelector // one must match
	Labels     map[string]Glob // every key must be there with a matching value
	Ports      []PortRange     // one must cover the binding's host ports
}

// ImageSelector matches a container's image by repository and, when Digest
// is set, by content: the image ID or the digest it was pulled by.
type ImageSelector struct {
	Repository Glob
	Digest     string // "sha256:<hex>", or "" for any
}

// Matches reports whether r exempts f. A service's finding is matched by
// the service's name (as the containers selector), image and labels.
func (r AllowRule) Matches(f Finding) bool {
	name, image, imageID, labels := f.Name, f.Image, f.ImageID, f.Labels
	if s := f.Service; s != nil {
		name, image, imageID, labels = s.Name, s.Image, "", s.Labels
	}
	return r.matchesContainer(name) &&
		r.matchesImage(image, imageID) &&
		r.matchesLabels(labels) &&
		r.matchesPorts(f.Binding)
}

func (r AllowRule) matchesContainer(name string) bool {
	if len(r.Containers) == 0 {
		return true
	}
	for _, g := range r.Containers {
		if g.Match(name) {
			return true
		}
	}
	return false
}

func (r AllowRule) matchesImage(image, imageID string) bool {
	if len(r.Images) == 0 {
		return true
	}
	names, digest := imageNames(image)
	for _, sel := range r.Images {
		if sel.Digest != "" && sel.Digest != imageID && sel.Digest != digest {
			continue
		}
		for _, n := range names {
			if sel.Repository.Match(n) {
				return true
			}
		}
	}
	return false
}

// imageNames returns the names a repository glob is matched against, short
// and fully qualified ("nginx", "docker.io/library/nginx"), and the digest
// the image was referenced by, if any. An image given by ID has no names.
func imageNames(image string) (names []string, digest string) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, ""
	}
	if c, ok := named.(reference.Canonical); ok {
		digest = c.Digest().String()
	}
	return []string{reference.FamiliarName(named), named.Name()}, digest
}

// matchesLabels compares keys without regard to case, because the config
// loader folds every key it reads to lower case.
func (r AllowRule) matchesLabels(labels map[string]string) bool {
	for key, g := range r.Labels {
		if !anyLabelMatches(labels, key, g) {
			return false
		}
	}
	return true
}

func anyLabelMatches(labels map[string]string, key string, g Glob) bool {
	for k, v := range labels {
		if strings.EqualFold(k, key) && g.Match(v) {
			return true
		}
	}
	return false
}

// matchesPorts treats a finding without a binding (host network) as
// matching only a rule that names no ports.
func (r AllowRule) matchesPorts(b *Binding) bool {
	if len(r.Ports) == 0 {
		return true
	}
	if b == nil {
		return false
	}
	for _, pr := range r.Ports {
		if pr.Covers(*b) {
			return true
		}
	}
	return false
}

// allow marks f allowed by the first rule of p that matches it.
func (p Policy) allow(f *Finding) {
	for _, r := range p.Allow {
		if r.Matches(*f) {
			f.Allowed, f.AllowedBy = true, r.Name
			return
		}
	}
}
