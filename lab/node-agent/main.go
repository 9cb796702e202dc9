// Command node-agent is the lab's stand-in for the two daemons of a kubeadm node that cannot run
// here, since the lab has no container runtime: containerd's CRI endpoint ("containerd") and the
// kubelet ("kubelet"), with crictl's view of the stand-in's containers ("crictl"). Everything else on a lab host is real: kubeadm, the control-plane binaries and
// etcd run as built from their Go modules. It also serves as the init process of a lab host's PID
// namespace ("init"), reaping orphans, so that killing it ends every process of the host.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: node-agent init|containerd|kubelet|crictl [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "init":
		err = runInit(os.Args[2:])
	case "containerd":
		err = runCRI(os.Args[2:])
	case "kubelet":
		err = runKubelet(os.Args[2:])
	case "crictl":
		err = runCrictl(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "node-agent %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
