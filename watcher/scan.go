package watcher

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"
)

// DefaultInspectConcurrency bounds the inspect calls a scan has in flight.
const DefaultInspectConcurrency = 8

// EngineAPI is the part of the engine client that a scan uses.
// *client.Client implements it.
type EngineAPI interface {
	ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerInspect(context.Context, string, client.ContainerInspectOptions) (
		client.ContainerInspectResult, error)
}

// ScanOptions says what a scan covers.
type ScanOptions struct {
	All         bool // also created, exited and dead containers, by declared bindings
	Concurrency int  // inspect calls in flight; 0 for DefaultInspectConcurrency
}

// ScanResult is what one scan found.
type ScanResult struct {
	Listed    int       // containers the engine listed
	Inspected int       // containers inspected; the others cannot have a finding
	Vanished  int       // containers removed between the list and their inspect
	Findings  []Finding // ordered by container name, then binding
}

// Scan lists the engine's containers once, inspects those that can have a
// finding under p, a bounded number at a time, and returns their findings.
// Any failed call but an inspect of a container that has since gone fails
// the scan: a partial scan is no evidence.
func Scan(ctx context.Context, api EngineAPI, p Policy, opts ScanOptions) (ScanResult, error) {
	list, err := api.ContainerList(ctx, client.ContainerListOptions{All: opts.All})
	if err != nil {
		return ScanResult{}, fmt.Errorf("listing containers: %w", err)
	}
	var ids []string
	for _, s := range list.Items {
		if mayHaveFinding(s) {
			ids = append(ids, s.ID)
		}
	}

	perContainer, vanished, err := inspectAll(ctx, api, ids, p, cmp.Or(opts.Concurrency,
		DefaultInspectConcurrency))
	if err != nil {
		return ScanResult{}, err
	}

	res := ScanResult{Listed: len(list.Items), Inspected: len(ids) - vanished, Vanished: vanished}
	for _, fs := range perContainer {
		res.Findings = append(res.Findings, fs...)
	}
	slices.SortStableFunc(res.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return res, nil
}

// mayHaveFinding reports whether a listed container needs an inspect. A
// running container that publishes no port and is not on the host network
// has no binding to judge; a stopped one shows its bindings only in its
// inspect, so it always needs one.
func mayHaveFinding(s container.Summary) bool {
	if s.State != container.StateRunning || s.HostConfig.NetworkMode == "host" {
		return true
	}
	for _, p := range s.Ports {
		if p.PublicPort != 0 {
			return true
		}
	}
	return false
}

// inspectAll inspects ids, at most limit at a time, and detects findings in
// each. It returns the findings per container and how many had vanished.
func inspectAll(ctx context.Context, api EngineAPI, ids []string, p Policy, limit int) (
	[][]Finding, int, error) {
	results := make([][]Finding, len(ids))
	gone := make([]bool, len(ids))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i, id := range ids {
		g.Go(func() error {
			c, err := api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			if cerrdefs.IsNotFound(err) {
				gone[i] = true
				return nil
			}
			if err != nil {
				return fmt.Errorf("inspecting container %s: %w", shortID(id), err)
			}
			results[i], err = Detect(c.Container, p)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	vanished := 0
	for _, g := range gone {
		if g {
			vanished++
		}
	}
	return results, vanished, nil
}
