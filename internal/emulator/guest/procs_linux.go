package guest

import "syscall"

// procAttr puts each component in a process group of its own, which a
// shutdown signals as a whole, and has the kernel kill it if the emulator
// dies without cleaning up (a test binary that panics or times out): no
// etcd or apiserver outlives the emulator that started it. The death
// signal follows the thread that forked; Go keeps its threads for the
// process's life unless a locked goroutine exits, which the guest never
// does.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
