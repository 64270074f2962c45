package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hakube/hakube/test/internal/harness"
)

// The Kubernetes half of the walkthrough: after every step the real
// kubectl reads the cluster through the kubeconfig hakube wrote, and the HA
// guide's "Verifying" halts a replica over `gcloud compute ssh`.

// homeEnv is the walkthrough's own HOME: hakube's kubeconfig, gcloud's
// configuration and SSH keys land there, never in the user's.
func (w *walk) homeEnv() []string {
	return append([]string{"HOME=" + w.home, "KUBECONFIG=" + filepath.Join(w.home, ".kube", "config")},
		harness.GcloudEnv(w.endpoint, w.o.project, filepath.Join(w.home, "gcloud"))...)
}

// tool runs kubectl or gcloud as a user would, showing the command.
func (w *walk) tool(ctx context.Context, show bool, name string, args ...string) (string, error) {
	if show {
		fmt.Fprintf(w.out, "   $ %s %s\n", filepath.Base(name), strings.Join(args, " "))
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(harness.CleanEnv(), w.homeEnv()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func (w *walk) kubectl(ctx context.Context, show bool, args ...string) (string, error) {
	return w.tool(ctx, show, w.o.kubectl, append([]string{"--request-timeout=5s"}, args...)...)
}

func (w *walk) gcloud(ctx context.Context, args ...string) (string, error) {
	return w.tool(ctx, true, w.o.gcloud, append(args, "--quiet")...)
}

// node is the part of a Node the walkthrough checks.
type node struct {
	name, role    string // role: "master" or "node"
	ready, cordon bool
}

func (n node) String() string {
	s := "NotReady"
	if n.ready {
		s = "Ready"
	}
	if n.cordon {
		s += ",SchedulingDisabled"
	}
	return n.name + "=" + s
}

// nodes reads the Nodes with the real kubectl.
func (w *walk) nodes(ctx context.Context) ([]node, error) {
	out, err := w.kubectl(ctx, false, "get", "nodes", "-o", "json")
	if err != nil {
		return nil, err
	}
	var l struct {
		Items []struct {
			Metadata struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				Unschedulable bool `json:"unschedulable"`
			} `json:"spec"`
			Status struct {
				Conditions []struct{ Type, Status string } `json:"conditions"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		return nil, fmt.Errorf("kubectl get nodes -o json: %v", err)
	}
	var ns []node
	for _, it := range l.Items {
		n := node{name: it.Metadata.Name, role: "node", cordon: it.Spec.Unschedulable}
		if _, ok := it.Metadata.Labels["node-role.kubernetes.io/control-plane"]; ok {
			n.role = "master"
		}
		for _, c := range it.Status.Conditions {
			if c.Type == "Ready" {
				n.ready = c.Status == "True"
			}
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// nodesWant is what `kubectl get nodes` must show for the cluster state:
// every master Ready,SchedulingDisabled (NotReady if halted), three Ready
// nodes per pool, and no Node of a VM that is gone.
func (w *walk) nodesWant(ctx context.Context, c cluster, halted string) ([]node, int, error) {
	var want []node
	for z := range c.masters {
		m, err := w.masterIn(ctx, z)
		if err != nil {
			return nil, 0, err
		}
		want = append(want, node{name: m.Name, role: "master", ready: m.Name != halted, cordon: true})
	}
	slices.SortFunc(want, func(a, b node) int { return strings.Compare(a.name, b.name) })
	return want, 3 * len(c.pools), nil
}

// nodesCheck waits (within its bound) until the real kubectl shows what
// the cluster state promises, then prints `kubectl get nodes` once.
func (w *walk) nodesCheck(ctx context.Context, c cluster, halted string, show bool) error {
	if !c.exists {
		return nil
	}
	masters, workers, err := w.nodesWant(ctx, c, halted)
	if err != nil {
		return err
	}
	var saw []node
	err = w.untilFor(ctx, w.o.nodeWait, "kubectl shows the masters and nodes", func() bool {
		ns, err := w.nodes(ctx)
		if err != nil {
			return false
		}
		saw = ns
		var gotMasters []node
		ready := 0
		for _, n := range ns {
			switch {
			case n.role == "master":
				gotMasters = append(gotMasters, n)
			case n.ready && !n.cordon:
				ready++
			}
		}
		return fmt.Sprint(gotMasters) == fmt.Sprint(masters) && ready == workers && len(ns) == len(masters)+workers
	})
	if err != nil {
		return fmt.Errorf("%v: kubectl shows %v; want masters %v and %d Ready nodes", err, saw, masters, workers)
	}
	if show {
		out, err := w.kubectl(ctx, true, "get", "nodes")
		if err != nil {
			return err
		}
		fmt.Fprint(w.out, harness.Indent(out, "   "))
	}
	return nil
}

// etcdCheck reads etcd's membership through `hakube status -o json`: one
// voting member per master, none of a VM that is gone, and (unless a
// replica is halted) all of them healthy.
func (w *walk) etcdCheck(ctx context.Context, c cluster, halted string) error {
	if !c.exists {
		return nil
	}
	st, err := w.readStatus(ctx)
	if err != nil {
		return err
	}
	if st.Etcd == nil {
		return fmt.Errorf("status shows no etcd membership")
	}
	if st.Etcd.Error != "" {
		return fmt.Errorf("status cannot read etcd's membership: %s", st.Etcd.Error)
	}
	var names []string
	for z := range c.masters {
		m, err := w.masterIn(ctx, z)
		if err != nil {
			return err
		}
		names = append(names, m.Name)
	}
	slices.Sort(names)
	var got []string
	for _, m := range st.Etcd.Members {
		switch {
		case m.Learner:
			return fmt.Errorf("etcd member %s is still a learner", m.Name)
		case !m.Healthy && m.Name != halted:
			return fmt.Errorf("etcd member %s is not healthy", m.Name)
		}
		got = append(got, m.Name)
	}
	slices.Sort(got)
	if fmt.Sprint(got) != fmt.Sprint(names) || len(st.Etcd.Phantoms) > 0 {
		return fmt.Errorf("etcd members %v (phantoms %v), want exactly the masters %v", got, st.Etcd.Phantoms, names)
	}
	w.lastMembers = len(got)
	return nil
}

// haltOverSSH is the HA guide's "Verifying": halt one replica from inside
// (`gcloud compute ssh ... sudo halt`); its Node turns NotReady while the
// static IP and kubectl keep serving, etcd keeps quorum; after
// `gcloud compute instances start` it is Ready and a healthy member again.
func (w *walk) haltOverSSH(ctx context.Context, c cluster, zone string) error {
	title := "Halt the replica in " + zone + " over SSH, then start it again"
	fmt.Fprintf(w.out, "== %s\n", title)
	start := time.Now()
	replica, err := w.masterIn(ctx, zone)
	if err != nil {
		return err
	}
	// The guide's workload first: a deployment and its service.
	if err := w.deploy(ctx, "nginx", true); err != nil {
		return err
	}
	ssh := []string{"compute", "ssh", replica.Name, "--zone", zone, "--command", "sudo halt"}
	if w.o.sshPort != 0 && w.o.sshPort != 22 {
		ssh = append(ssh, fmt.Sprintf("--ssh-flag=-p %d", w.o.sshPort))
	}
	if _, err := w.gcloud(ctx, ssh...); err != nil && !strings.Contains(err.Error(), "exit status 255") {
		// A halt closes the connection under ssh: 255 is how that ends.
		return err
	}
	if err := w.until(ctx, replica.Name+" is TERMINATED", func() bool {
		in, err := w.svc.Instances.Get(w.o.project, zone, replica.Name).Context(ctx).Do()
		return err == nil && in.Status == "TERMINATED"
	}); err != nil {
		return err
	}
	fmt.Fprintf(w.out, "   %s is TERMINATED\n", replica.Name)
	if err := w.until(ctx, "the static IP serves every request with "+replica.Name+" halted", func() bool {
		return w.serveCheck(ctx, 20) == nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(w.out, "   the static IP served 20 of 20 requests with %s halted\n", replica.Name)
	if err := w.nodesCheck(ctx, c, replica.Name, true); err != nil {
		return fmt.Errorf("with %s halted: %w", replica.Name, err)
	}
	if err := w.deploy(ctx, "nginx-while-halted", false); err != nil {
		return fmt.Errorf("with %s halted: %w", replica.Name, err)
	}
	if err := w.etcdCheck(ctx, c, replica.Name); err != nil {
		return fmt.Errorf("with %s halted: %w", replica.Name, err)
	}
	fmt.Fprintf(w.out, "   etcd: %d members, the halted one unreachable, the others a quorum\n", w.lastMembers)
	if err := w.waitHealth(ctx, nil, map[string]string{replica.Name: "UNHEALTHY"}); err != nil {
		return fmt.Errorf("with %s halted: %w", replica.Name, err)
	}
	if err := w.status(ctx, "Status with "+replica.Name+" halted"); err != nil {
		return err
	}
	if _, err := w.gcloud(ctx, "compute", "instances", "start", replica.Name, "--zone", zone); err != nil {
		return err
	}
	if err := w.nodesCheck(ctx, c, "", false); err != nil {
		return fmt.Errorf("after starting %s: %w", replica.Name, err)
	}
	if err := w.etcdCheck(ctx, c, ""); err != nil {
		return fmt.Errorf("after starting %s: %w", replica.Name, err)
	}
	if err := w.waitHealth(ctx, nil, nil); err != nil {
		return fmt.Errorf("after starting %s: %w", replica.Name, err)
	}
	if _, err := w.kubectl(ctx, false, "delete", "deployment", "nginx", "nginx-while-halted", "--wait=false"); err != nil {
		return err
	}
	if _, err := w.kubectl(ctx, false, "delete", "service", "nginx", "--wait=false"); err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(w.out, "   %s is Ready, a healthy etcd member and HEALTHY again after %s\n\n", replica.Name, took.Round(10*time.Millisecond))
	w.rows = append(w.rows, row{step: title, took: took, apiCalls: 0, outage: "none"})
	return nil
}

// deploy creates a deployment of nginx (and, with expose, its service) and
// waits until its pod is Running: scheduled by the real scheduler onto a
// node, reported Running by that node's kubelet.
func (w *walk) deploy(ctx context.Context, name string, expose bool) error {
	if _, err := w.kubectl(ctx, true, "create", "deployment", name, "--image=nginx"); err != nil {
		return fmt.Errorf("the cluster takes no writes: %w", err)
	}
	if expose {
		if _, err := w.kubectl(ctx, true, "expose", "deployment", name, "--port=80"); err != nil {
			return err
		}
	}
	if err := w.until(ctx, "the pod of deployment "+name+" is Running", func() bool {
		out, err := w.kubectl(ctx, false, "get", "pods", "-l", "app="+name, "-o", "jsonpath={.items[*].status.phase}")
		return err == nil && strings.TrimSpace(out) == "Running"
	}); err != nil {
		return err
	}
	if _, err := w.kubectl(ctx, true, "get", "pods", "-l", "app="+name, "-o", "wide"); err != nil {
		return err
	}
	if expose {
		if _, err := w.kubectl(ctx, true, "get", "service", name); err != nil {
			return err
		}
	}
	return nil
}

// kubeconfigGone checks that the last teardown took the cluster's entry out
// of the kubeconfig (and left the file, which may hold other clusters).
func (w *walk) kubeconfigGone(ctx context.Context) error {
	out, err := w.kubectl(ctx, false, "config", "get-contexts", "-o", "name")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "" {
		return fmt.Errorf("the kubeconfig still has contexts after the teardown: %s", out)
	}
	if _, err := os.Stat(filepath.Join(w.home, ".kube", "config")); err != nil {
		return fmt.Errorf("the kubeconfig: %v", err)
	}
	return nil
}
