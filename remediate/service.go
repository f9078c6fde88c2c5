package remediate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/watcher"
)

// Service actions, as enforce.services names them.
const (
	ServiceAlert        = "alert"
	ServiceScaleToZero  = "scale-to-zero"
	ServiceRemovePort   = "remove-published-port"
	PreviousReplicasKey = "io.portwarden.previous-replicas" // where scale-to-zero keeps the count
)

// Verdicts of EnforceService, besides Loop, WouldStop, StopFailed and Gone.
const (
	ScaledToZero Verdict = "scaled-to-zero" // replicas set to 0
	PortRemoved  Verdict = "port-removed"   // the privileged published ports taken out
	Skipped      Verdict = "skipped"        // nothing done; Err says why
	AlreadyDone  Verdict = "already-done"   // a service portwarden itself scaled to zero
)

// ServiceEngine is the part of the engine client that acting on services
// uses. *client.Client implements it.
type ServiceEngine interface {
	ServiceInspect(context.Context, string, client.ServiceInspectOptions) (
		client.ServiceInspectResult, error)
	ServiceUpdate(context.Context, string, client.ServiceUpdateOptions) (
		client.ServiceUpdateResult, error)
}

// errNotServiceEngine is returned when the engine given to NewEnforcer
// cannot act on services.
var errNotServiceEngine = errors.New("this engine client cannot update services")

// EnforceService acts on a Swarm service whose findings ev holds, as
// action says: scale a replicated service to zero replicas, recording the
// count in a label so that a person can restore it, or take the
// offending published ports out of its spec. A global service cannot be
// scaled: it is skipped, with the reason.
func (e *Enforcer) EnforceService(ctx context.Context, ev watcher.Evaluation,
	action string) Outcome {
	opts := *e.opts.Load()
	if held, first := e.held(ev.Workload, opts); held {
		return Outcome{Verdict: Loop, LoopTripped: first}
	}
	if opts.DryRun {
		return Outcome{Verdict: WouldStop, Action: action}
	}
	se, ok := e.engine.(ServiceEngine)
	if !ok {
		return Outcome{Verdict: StopFailed, Action: action, Err: errNotServiceEngine}
	}

	start := time.Now()
	out := e.updateService(ctx, se, ev, action)
	out.Action, out.Duration = action, time.Since(start)
	if out.Verdict == ScaledToZero || out.Verdict == PortRemoved {
		e.count(ev.Workload)
	}
	return out
}

func (e *Enforcer) updateService(ctx context.Context, se ServiceEngine, ev watcher.Evaluation,
	action string) Outcome {
	ctx, cancel := context.WithTimeout(ctx, callSlack)
	defer cancel()
	res, err := se.ServiceInspect(ctx, ev.Service.ID, client.ServiceInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return Outcome{Verdict: Gone}
	case err != nil:
		return Outcome{Verdict: StopFailed, Err: fmt.Errorf("inspecting the service: %w", err)}
	}
	spec := res.Service.Spec

	var verdict Verdict
	switch action {
	case ServiceScaleToZero:
		r := spec.Mode.Replicated
		switch {
		case r == nil:
			return Outcome{Verdict: Skipped,
				Err: errors.New("a global service cannot be scaled to zero; alerting only")}
		case r.Replicas != nil && *r.Replicas == 0:
			if _, ours := spec.Labels[PreviousReplicasKey]; ours {
				return Outcome{Verdict: AlreadyDone}
			}
			return Outcome{Verdict: Skipped, Err: errors.New("already at 0 replicas")}
		}
		prev := uint64(1)
		if r.Replicas != nil {
			prev = *r.Replicas
		}
		spec.Labels = maps.Clone(spec.Labels)
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		spec.Labels[PreviousReplicasKey] = strconv.FormatUint(prev, 10)
		zero := uint64(0)
		spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &zero}
		verdict = ScaledToZero
	case ServiceRemovePort:
		if !removePorts(&spec, ev.Violations()) {
			return Outcome{Verdict: Skipped,
				Err: errors.New("the spec declares none of the published ports found")}
		}
		verdict = PortRemoved
	default:
		return Outcome{Verdict: Skipped, Err: fmt.Errorf("action %q is not known", action)}
	}

	_, err = se.ServiceUpdate(ctx, ev.Service.ID,
		client.ServiceUpdateOptions{Version: res.Service.Version, Spec: spec})
	if err != nil {
		return Outcome{Verdict: StopFailed, Err: fmt.Errorf("updating the service: %w", err)}
	}
	return Outcome{Verdict: verdict}
}

// removePorts takes out of spec the published ports of violations, and
// reports whether it took any.
func removePorts(spec *swarm.ServiceSpec, violations []watcher.Finding) bool {
	if spec.EndpointSpec == nil {
		return false
	}
	bad := func(pc swarm.PortConfig) bool {
		for _, f := range violations {
			proto := string(pc.Protocol)
			if proto == "" {
				proto = "tcp"
			}
			if f.Binding != nil && int(pc.PublishedPort) == f.Binding.HostPort &&
				proto == f.Binding.Protocol {
				return true
			}
		}
		return false
	}
	ep := *spec.EndpointSpec
	before := len(ep.Ports)
	ep.Ports = slices.DeleteFunc(slices.Clone(ep.Ports), bad)
	spec.EndpointSpec = &ep
	return len(ep.Ports) < before
}
