package main

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// The kubelet stand-in: runs each static pod manifest in the kubelet's manifest directory as
// processes of this host (each container's command and arguments, with the host's paths, since every
// kubeadm static pod uses the host network and host paths), restarts a container whose process ends
// and a pod whose manifest changes, and stops a pod whose manifest goes away. It serves /healthz on
// the configured healthz address, performs the TLS bootstrap with the bootstrap token of
// bootstrap-kubelet.conf, registers its Node and renews its Lease, and keeps a mirror pod of each
// static pod, with kubeadm's kubernetes.io/config.hash, so kubeadm sees its pods restart. It reads
// what kubeadm writes: /var/lib/kubelet/config.yaml, /var/lib/kubelet/kubeadm-flags.env,
// /etc/kubernetes/kubelet.conf and bootstrap-kubelet.conf.
//
// What it does not do: pull or isolate containers (no image, cgroup, namespace or mount of a pod
// exists; a container runs the lab's build of the binary its image names), run pods other than
// static ones (kube-proxy and CoreDNS stay Pending), act on liveness probes, or rotate certificates.

const (
	kubeletConfigFile = "/var/lib/kubelet/config.yaml"
	kubeadmFlagsFile  = "/var/lib/kubelet/kubeadm-flags.env"
	kubeletKubeconfig = "/etc/kubernetes/kubelet.conf"
	bootstrapConfig   = "/etc/kubernetes/bootstrap-kubelet.conf"
	kubeletPKIDir     = "/var/lib/kubelet/pki"
)

type kubeletConfig struct {
	StaticPodPath      string `json:"staticPodPath"`
	HealthzBindAddress string `json:"healthzBindAddress"`
	HealthzPort        *int   `json:"healthzPort"`
}

type container struct {
	name    string
	image   string
	cmd     *exec.Cmd // nil for a process adopted from an earlier run of the stand-in
	pid     int
	started time.Time
	restart int
	ready   bool
	done    chan struct{}
}

type staticPod struct {
	state      *podState
	spec       *corev1.Pod
	containers map[string]*container
	mirrorHash string // the hash of the mirror pod the API holds, once made
}

type kubelet struct {
	release  string
	labCache string
	nodeName string
	nodeIP   string
	config   kubeletConfig
	mu       sync.Mutex
	pods     map[string]*staticPod // by full name (<name>-<node>)
	api      *nodeAPI
}

func runKubelet(args []string) error {
	release := os.Getenv("LAB_KUBELET_RELEASE")
	for _, a := range args {
		if a == "--version" || a == "--version=true" {
			fmt.Printf("Kubernetes v%s\n", release)
			return nil
		}
	}
	flags := flag.NewFlagSet("kubelet", flag.ContinueOnError)
	flags.Bool("version", false, "")
	if err := flags.Parse(args); err != nil {
		return err
	}
	k := &kubelet{release: release, labCache: os.Getenv("LAB_CACHE"), pods: map[string]*staticPod{}}
	if k.release == "" || k.labCache == "" {
		return fmt.Errorf("LAB_KUBELET_RELEASE and LAB_CACHE must be set (the lab's kubelet wrapper sets them)")
	}
	// Before kubeadm has written its configuration, a real kubelet exits and systemd restarts it;
	// this one waits for it.
	for {
		data, err := os.ReadFile(kubeletConfigFile)
		if err == nil {
			if err := yaml.Unmarshal(data, &k.config); err != nil {
				return fmt.Errorf("%s: %w", kubeletConfigFile, err)
			}
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if k.config.StaticPodPath == "" {
		k.config.StaticPodPath = "/etc/kubernetes/manifests"
	}
	k.readKubeadmFlags()
	go k.serveHealthz()
	go k.serveAPI()
	k.adopt()
	k.api = &nodeAPI{k: k}
	go k.api.run()
	for {
		k.syncManifests()
		k.probe()
		time.Sleep(300 * time.Millisecond)
	}
}

var flagPattern = regexp.MustCompile(`--([a-z-]+)=("[^"]*"|\S+)`)

// readKubeadmFlags takes the node's name and address from KUBELET_KUBEADM_ARGS.
func (k *kubelet) readKubeadmFlags() {
	hostname, _ := os.Hostname()
	k.nodeName = strings.ToLower(hostname)
	data, _ := os.ReadFile(kubeadmFlagsFile)
	for _, m := range flagPattern.FindAllStringSubmatch(string(data), -1) {
		value := strings.Trim(m[2], `"`)
		switch m[1] {
		case "hostname-override":
			k.nodeName = strings.ToLower(value)
		case "node-ip":
			k.nodeIP = value
		}
	}
	if k.nodeIP == "" {
		if addrs, err := net.LookupHost(hostname); err == nil && len(addrs) > 0 {
			k.nodeIP = addrs[0]
		}
	}
}

func (k *kubelet) serveHealthz() {
	address := k.config.HealthzBindAddress
	if address == "" {
		address = "127.0.0.1"
	}
	port := 10248
	if k.config.HealthzPort != nil {
		port = *k.config.HealthzPort
	}
	if port == 0 {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	server := &http.Server{Addr: net.JoinHostPort(address, strconv.Itoa(port)), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	for {
		fmt.Fprintln(os.Stderr, "healthz:", server.ListenAndServe())
		time.Sleep(time.Second)
	}
}

func digestOf(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// adopt takes over the processes an earlier run of the stand-in started (a kubelet restart leaves
// the containers running, as containerd keeps them).
func (k *kubelet) adopt() {
	for _, state := range readPodStates() {
		pod := &corev1.Pod{}
		if err := yaml.Unmarshal([]byte(state.Manifest), pod); err != nil {
			continue
		}
		sp := &staticPod{state: state, spec: pod, containers: map[string]*container{}}
		for _, c := range state.Containers {
			sp.containers[c.Name] = &container{name: c.Name, image: c.Image, pid: c.PID, started: time.Unix(0, c.StartedAt), restart: c.Restarts}
		}
		k.pods[state.Name] = sp
	}
}

// syncManifests starts, restarts and stops pods to match the manifest directory.
func (k *kubelet) syncManifests() {
	desired := map[string]*corev1.Pod{}
	hashes := map[string]string{}
	texts := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(k.config.StaticPodPath, "*"))
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pod := &corev1.Pod{}
		if err := yaml.Unmarshal(data, pod); err != nil || pod.Name == "" {
			fmt.Fprintf(os.Stderr, "static pod %s: %v\n", f, err)
			continue
		}
		if pod.Namespace == "" {
			pod.Namespace = "kube-system"
		}
		name := pod.Name + "-" + k.nodeName
		desired[name], hashes[name], texts[name] = pod, digestOf(string(data))[:32], string(data)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for name, sp := range k.pods {
		if _, ok := desired[name]; !ok || sp.state.Hash != hashes[name] {
			k.stopPod(sp)
			delete(k.pods, name)
			_ = os.Remove(podStateFile(name))
		}
	}
	for name, pod := range desired {
		sp, ok := k.pods[name]
		if !ok {
			state := &podState{Name: name, Namespace: pod.Namespace, UID: hashes[name], Hash: hashes[name], Manifest: texts[name], CreatedAt: time.Now().UnixNano()}
			sp = &staticPod{state: state, spec: pod, containers: map[string]*container{}}
			k.pods[name] = sp
		}
		if current, err := readPodState(name); err == nil && current.Stopped {
			sp.state.Stopped = true
		}
		if sp.state.Stopped {
			continue
		}
		for _, c := range pod.Spec.Containers {
			running := sp.containers[c.Name]
			if running != nil && alive(running.pid) {
				continue
			}
			restarts := 0
			if running != nil {
				restarts = running.restart + 1
				// The kubelet's crash-loop back-off, shortened: at most 10 seconds.
				wait := time.Duration(min(restarts, 10)) * time.Second
				if time.Since(running.started) < wait {
					continue
				}
			}
			started, err := k.startContainer(sp, c)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s/%s: %v\n", name, c.Name, err)
				started = &container{name: c.Name, image: c.Image, started: time.Now()}
			}
			started.restart = restarts
			sp.containers[c.Name] = started
		}
		k.saveState(sp)
	}
}

func (k *kubelet) saveState(sp *staticPod) {
	sp.state.Containers = nil
	names := make([]string, 0, len(sp.containers))
	for n := range sp.containers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := sp.containers[n]
		sp.state.Containers = append(sp.state.Containers, containerState{Name: n, ID: digestOf(sp.state.UID + n + strconv.Itoa(c.pid))[:32], Image: c.image, PID: c.pid, StartedAt: c.started.UnixNano(), Restarts: c.restart})
	}
	if err := writePodState(sp.state); err != nil {
		fmt.Fprintln(os.Stderr, "pod state:", err)
	}
}

// binaryFor maps a container's image to the lab's build of its binary: registry.k8s.io/kube-*:vX
// to kubernetes-vX/<command>, registry.k8s.io/etcd:X-N to etcd-vX/<command>.
func binaryFor(labCache, image, command string) (string, error) {
	ref := image[strings.LastIndex(image, "/")+1:]
	repo, tag, ok := strings.Cut(ref, ":")
	if !ok {
		return "", fmt.Errorf("image %s has no tag", image)
	}
	var dir string
	switch {
	case strings.HasPrefix(repo, "kube-"):
		dir = "kubernetes-v" + strings.TrimPrefix(tag, "v")
	case repo == "etcd":
		dir = "etcd-v" + regexp.MustCompile(`-\d+$`).ReplaceAllString(tag, "")
	default:
		return "", fmt.Errorf("the lab has no build of image %s", image)
	}
	path := filepath.Join(labCache, dir, filepath.Base(command))
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("image %s: the lab has not built %s (%v)", image, path, err)
	}
	return path, nil
}

func (k *kubelet) startContainer(sp *staticPod, c corev1.Container) (*container, error) {
	command := append(append([]string{}, c.Command...), c.Args...)
	if len(command) == 0 {
		return nil, fmt.Errorf("no command")
	}
	binary, err := binaryFor(k.labCache, c.Image, command[0])
	if err != nil {
		return nil, err
	}
	logDir := filepath.Join("/var/log/pods", fmt.Sprintf("%s_%s_%s", sp.state.Namespace, sp.state.Name, sp.state.UID), c.Name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(logDir, "0.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, command[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, e := range c.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	cmd.Dir = "/"
	if c.WorkingDir != "" {
		cmd.Dir = c.WorkingDir
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	started := &container{name: c.Name, image: c.Image, cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(started.done)
	}()
	return started, nil
}

func (k *kubelet) stopPod(sp *staticPod) {
	grace := 30
	if g := sp.spec.Spec.TerminationGracePeriodSeconds; g != nil && int(*g) < grace {
		grace = int(*g)
	}
	var wg sync.WaitGroup
	for _, c := range sp.containers {
		wg.Add(1)
		go func(c *container) {
			defer wg.Done()
			stopProcessGroup(c.pid, grace)
			if c.done != nil {
				<-c.done
			}
		}(c)
	}
	wg.Wait()
}

// probe runs each container's readiness probe (else its startup probe) as the kubelet would, for
// the mirror pod's Ready condition. Liveness probes are not acted on.
func (k *kubelet) probe() {
	k.mu.Lock()
	type target struct {
		c     *container
		probe *corev1.Probe
	}
	var targets []target
	for _, sp := range k.pods {
		for _, spec := range sp.spec.Spec.Containers {
			c := sp.containers[spec.Name]
			if c == nil {
				continue
			}
			p := spec.ReadinessProbe
			if p == nil {
				p = spec.StartupProbe
			}
			targets = append(targets, target{c, p})
		}
	}
	k.mu.Unlock()
	for _, t := range targets {
		ready := alive(t.c.pid) && (t.probe == nil || httpProbe(t.probe, k.nodeIP))
		k.mu.Lock()
		t.c.ready = ready
		k.mu.Unlock()
	}
}

var probeClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // as the kubelet's probes: no verification

func httpProbe(p *corev1.Probe, nodeIP string) bool {
	get := p.HTTPGet
	if get == nil {
		return true
	}
	host := get.Host
	if host == "" {
		host = nodeIP
	}
	port := get.Port.IntValue()
	if get.Port.Type == intstr.String {
		return true
	}
	scheme := strings.ToLower(string(get.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	resp, err := probeClient.Get(fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), get.Path))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}
