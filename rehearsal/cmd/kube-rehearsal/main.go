// Command kube-rehearsal is the real etcd and Kubernetes control plane in one
// multi-call binary (as hyperkube was), built from the Go module proxy for
// gce-emulator's rehearsal VMs: the first argument names the component and
// the rest are that component's own flags.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kube-rehearsal etcd|kube-apiserver|kube-controller-manager|kube-scheduler [flags]")
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	switch name {
	case "etcd":
		// etcdmain reads os.Args itself, with the program name first.
		etcdmain.Main(append([]string{"etcd"}, args...))
	case "kube-apiserver":
		run(apiserver.NewAPIServerCommand(), args)
	case "kube-controller-manager":
		run(controllermanager.NewControllerManagerCommand(), args)
	case "kube-scheduler":
		run(scheduler.NewSchedulerCommand(), args)
	case "version":
		fmt.Println(version)
	default:
		fmt.Fprintf(os.Stderr, "kube-rehearsal: unknown component %q\n", name)
		os.Exit(2)
	}
}

// version is stamped by the Makefile together with component-base's version
// variables, so that every component reports the release it was built from.
var version = "unknown"

func run(cmd *cobra.Command, args []string) {
	cmd.SetArgs(args)
	os.Exit(cli.Run(cmd))
}
