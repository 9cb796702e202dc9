package main

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The CRI stand-in: what kubeadm asks of containerd (its status, its sandbox image, the images it
// holds or pulls, the Kubernetes pods it runs, and their removal on `kubeadm reset`), answered from
// the host's own files. Images are not downloaded: an image "pulled" is recorded, and the kubelet
// stand-in runs the lab's build of the binary the image would carry. The sandbox image it reports is
// the one /etc/containerd/config.toml sets (as containerd reports its own), so kubeadm's check that
// it matches kubeadm's pause image judges the node's real configuration.
type criServer struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer
	mu       sync.Mutex
	imageDir string
}

func runCRI(args []string) error {
	flags := flag.NewFlagSet("containerd", flag.ContinueOnError)
	socket := flags.String("socket", "/run/containerd/containerd.sock", "the CRI socket")
	imageDir := flags.String("image-dir", "/var/lib/containerd-standin/images", "where pulled images are recorded")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*socket), 0o711); err != nil {
		return err
	}
	_ = os.Remove(*socket)
	listener, err := net.Listen("unix", *socket)
	if err != nil {
		return err
	}
	server := grpc.NewServer()
	cri := &criServer{imageDir: *imageDir}
	runtimeapi.RegisterRuntimeServiceServer(server, cri)
	runtimeapi.RegisterImageServiceServer(server, cri)
	return server.Serve(listener)
}

func (s *criServer) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "containerd", RuntimeVersion: "v2.1.0-kubeadm-ha-lab", RuntimeApiVersion: "v1"}, nil
}

// sandboxImagePattern finds containerd 1.x's sandbox_image and 2.x's sandbox (the pinned image).
var sandboxImagePattern = regexp.MustCompile(`(?m)^\s*sandbox(?:_image)?\s*=\s*"([^"]+)"`)

func (s *criServer) Status(_ context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	// containerd is network-ready once a CNI configuration is in place (the CNI add-on writes one).
	cni, _ := filepath.Glob("/etc/cni/net.d/*.conf*")
	network := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: len(cni) > 0}
	if len(cni) == 0 {
		network.Reason, network.Message = "NetworkPluginNotReady", "Network plugin returns error: cni plugin not initialized"
	}
	resp := &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true}, network,
	}}}
	if req.GetVerbose() {
		image := "registry.k8s.io/pause:3.10" // containerd 2.1's default
		if config, err := os.ReadFile("/etc/containerd/config.toml"); err == nil {
			if m := sandboxImagePattern.FindSubmatch(config); m != nil {
				image = string(m[1])
			}
		}
		info, _ := json.Marshal(map[string]string{"sandboxImage": image})
		resp.Info = map[string]string{"config": string(info)}
	}
	return resp, nil
}

func (s *criServer) RuntimeConfig(context.Context, *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_SYSTEMD}}, nil
}

func (s *criServer) imageFile(image string) string {
	return filepath.Join(s.imageDir, strings.NewReplacer("/", "_", ":", "@").Replace(image))
}

func (s *criServer) ImageStatus(_ context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	image := req.GetImage().GetImage()
	if _, err := os.Stat(s.imageFile(image)); err != nil {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	return &runtimeapi.ImageStatusResponse{Image: &runtimeapi.Image{Id: "sha256:" + digestOf(image), RepoTags: []string{image}, Size: 1}}, nil
}

func (s *criServer) PullImage(_ context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	image := req.GetImage().GetImage()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.imageDir, 0o700); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if err := os.WriteFile(s.imageFile(image), []byte(image+"\n"), 0o600); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &runtimeapi.PullImageResponse{ImageRef: "sha256:" + digestOf(image)}, nil
}

func (s *criServer) ListImages(context.Context, *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	files, _ := filepath.Glob(filepath.Join(s.imageDir, "*"))
	sort.Strings(files)
	resp := &runtimeapi.ListImagesResponse{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		image := strings.TrimSpace(string(data))
		resp.Images = append(resp.Images, &runtimeapi.Image{Id: "sha256:" + digestOf(image), RepoTags: []string{image}, Size: 1})
	}
	return resp, nil
}

func (s *criServer) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	return &runtimeapi.ImageFsInfoResponse{}, nil
}

func sandboxOf(p *podState) *runtimeapi.PodSandbox {
	state := runtimeapi.PodSandboxState_SANDBOX_READY
	if p.Stopped {
		state = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	}
	return &runtimeapi.PodSandbox{
		Id:        p.UID,
		Metadata:  &runtimeapi.PodSandboxMetadata{Name: p.Name, Namespace: p.Namespace, Uid: p.UID},
		State:     state,
		CreatedAt: p.CreatedAt,
		Labels:    map[string]string{"io.kubernetes.pod.name": p.Name, "io.kubernetes.pod.namespace": p.Namespace, "io.kubernetes.pod.uid": p.UID},
	}
}

func (s *criServer) ListPodSandbox(context.Context, *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, p := range readPodStates() {
		resp.Items = append(resp.Items, sandboxOf(p))
	}
	return resp, nil
}

func (s *criServer) podByID(id string) *podState {
	for _, p := range readPodStates() {
		if p.UID == id {
			return p
		}
	}
	return nil
}

// StopPodSandbox ends the pod's processes; the kubelet stand-in does not start them again unless
// its manifest changes (kubeadm reset stops the kubelet and removes the manifests anyway).
func (s *criServer) StopPodSandbox(_ context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	if p := s.podByID(req.GetPodSandboxId()); p != nil {
		p.Stopped = true
		if err := writePodState(p); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		for _, c := range p.Containers {
			stopProcessGroup(c.PID, 10)
		}
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

func (s *criServer) RemovePodSandbox(_ context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	if p := s.podByID(req.GetPodSandboxId()); p != nil {
		for _, c := range p.Containers {
			stopProcessGroup(c.PID, 0)
		}
		_ = os.Remove(podStateFile(p.Name))
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

func (s *criServer) ListContainers(context.Context, *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	resp := &runtimeapi.ListContainersResponse{}
	for _, p := range readPodStates() {
		for _, c := range p.Containers {
			state := runtimeapi.ContainerState_CONTAINER_EXITED
			if !p.Stopped && alive(c.PID) {
				state = runtimeapi.ContainerState_CONTAINER_RUNNING
			}
			resp.Containers = append(resp.Containers, &runtimeapi.Container{
				Id: c.ID, PodSandboxId: p.UID, Metadata: &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: uint32(c.Restarts)},
				Image: &runtimeapi.ImageSpec{Image: c.Image}, ImageRef: c.Image, State: state, CreatedAt: c.StartedAt,
				Labels: map[string]string{"io.kubernetes.container.name": c.Name, "io.kubernetes.pod.name": p.Name, "io.kubernetes.pod.namespace": p.Namespace},
			})
		}
	}
	return resp, nil
}

func sleepMillis(ms int) { time.Sleep(time.Duration(ms) * time.Millisecond) }
