package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// filesPerNodeVM is what a node VM with its kubelet holds open in the
// emulator, with room: its SSH listener, its external IP's NAT listener and
// the NAT's connection to the API for the kubelet (3.3 measured at 50
// nodes; the kubelet's own end is in process, dataplane.Plane.Dial).
const filesPerNodeVM = 4

// raiseFileLimit lifts the open-file limit as far as the kernel allows
// (fs.nr_open; Go itself only lifts the soft limit to the hard one). At a
// limit too low for the cluster, the static IP stops accepting connections
// and the kubelets' Nodes never turn Ready. Without the privilege to raise
// the hard limit it says how many node VMs fit, when fewer than kube-up's
// largest cluster.
func raiseFileLimit(log *zap.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if max, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && max > lim.Max {
			want := syscall.Rlimit{Cur: max, Max: max}
			if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
				lim = want
			}
		}
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if fit := lim.Cur / filesPerNodeVM; fit < 5000 {
		log.Warn("the open-file limit is low for a large cluster: raise it (ulimit -n) before emulating more node VMs than fit",
			zap.Uint64("limit", lim.Cur), zap.Uint64("nodeVMsThatFit", fit))
	}
}
