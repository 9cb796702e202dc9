package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// The static pods the kubelet stand-in runs, one JSON file each, shared with the CRI stand-in (which
// lists them as sandboxes and containers, and stops them for `kubeadm reset`) and the crictl shim.
// On /run, so a host's reboot forgets them, as it forgets containers.
const podStateDir = "/run/kubelet-standin/pods"

type containerState struct {
	Name      string `json:"name"`
	ID        string `json:"id"`
	Image     string `json:"image"`
	PID       int    `json:"pid"`
	StartedAt int64  `json:"startedAt"`
	Restarts  int    `json:"restarts"`
}

type podState struct {
	Name       string           `json:"name"`
	Namespace  string           `json:"namespace"`
	UID        string           `json:"uid"`
	Hash       string           `json:"hash"`
	Manifest   string           `json:"manifest"`
	CreatedAt  int64            `json:"createdAt"`
	Containers []containerState `json:"containers"`
	// Stopped by the CRI (kubeadm reset): the kubelet leaves it stopped until its manifest changes.
	Stopped bool `json:"stopped,omitempty"`
}

func podStateFile(name string) string { return filepath.Join(podStateDir, name+".json") }

func writePodState(p *podState) error {
	if err := os.MkdirAll(podStateDir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return err
	}
	tmp := podStateFile(p.Name) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, podStateFile(p.Name))
}

func readPodState(name string) (*podState, error) {
	data, err := os.ReadFile(podStateFile(name))
	if err != nil {
		return nil, err
	}
	var p podState
	return &p, json.Unmarshal(data, &p)
}

// readPodStates lists every pod the kubelet stand-in recorded, by name.
func readPodStates() []*podState {
	files, _ := filepath.Glob(filepath.Join(podStateDir, "*.json"))
	sort.Strings(files)
	var pods []*podState
	for _, f := range files {
		name := filepath.Base(f)
		if p, err := readPodState(name[:len(name)-len(".json")]); err == nil {
			pods = append(pods, p)
		}
	}
	return pods
}

// alive reports whether a process of this host runs as pid (a zombie counts as gone).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' {
			return i+2 < len(stat) && stat[i+2] != 'Z'
		}
	}
	return true
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// stopProcessGroup ends a container's process group: SIGTERM, then SIGKILL after grace seconds.
func stopProcessGroup(pid int, graceSeconds int) {
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	for i := 0; i < graceSeconds*10 && alive(pid); i++ {
		sleepMillis(100)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for i := 0; i < 50 && alive(pid); i++ {
		sleepMillis(100)
	}
}
