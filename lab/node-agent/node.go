package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/certificate/csr"
	"k8s.io/utils/ptr"
)

// nodeAPI is the stand-in's side of the API: the TLS bootstrap, the Node and its Lease, mirror pods.
type nodeAPI struct {
	k        *kubelet
	client   kubernetes.Interface
	loadedAt time.Time
	node     *corev1.Node
	started  time.Time
}

func (a *nodeAPI) run() {
	a.started = time.Now()
	for {
		if err := a.sync(); err != nil {
			fmt.Fprintln(os.Stderr, "api:", err)
		}
		time.Sleep(time.Second)
	}
}

func (a *nodeAPI) sync() error {
	if err := a.connect(); err != nil || a.client == nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.syncNode(ctx); err != nil {
		return err
	}
	if err := a.renewLease(ctx); err != nil {
		return err
	}
	return a.syncMirrorPods(ctx)
}

// connect builds the client from kubelet.conf, again whenever the file changes; without it, it
// performs the TLS bootstrap when kubeadm has written bootstrap-kubelet.conf.
func (a *nodeAPI) connect() error {
	info, err := os.Stat(kubeletKubeconfig)
	if os.IsNotExist(err) {
		a.client = nil
		if _, err := os.Stat(bootstrapConfig); err != nil {
			return nil
		}
		return a.bootstrap()
	}
	if err != nil {
		return err
	}
	if a.client != nil && !info.ModTime().After(a.loadedAt) {
		return nil
	}
	config, err := clientcmd.BuildConfigFromFlags("", kubeletKubeconfig)
	if err != nil {
		return err
	}
	config.UserAgent = "kubelet/v" + a.k.release + " (kubeadm-ha lab stand-in)"
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	a.client, a.loadedAt, a.node = client, info.ModTime(), nil
	return nil
}

// bootstrap is the kubelet's TLS bootstrap: a CSR for system:node:<name> with the bootstrap token,
// approved by the controller-manager (kubeadm's RBAC lets bootstrappers' CSRs be auto-approved), the
// issued certificate written with its key, and kubelet.conf made to use them.
func (a *nodeAPI) bootstrap() error {
	bootstrap, err := clientcmd.LoadFromFile(bootstrapConfig)
	if err != nil {
		return err
	}
	restConfig, err := clientcmd.NewDefaultClientConfig(*bootstrap, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	request, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:" + a.k.nodeName, Organization: []string{"system:nodes"}},
	}, key)
	if err != nil {
		return err
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: request})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	name, uid, err := csr.RequestCertificate(client, csrPEM, "", certificatesv1.KubeAPIServerClientKubeletSignerName, nil, usages, key)
	if err != nil {
		return fmt.Errorf("TLS bootstrap: %w", err)
	}
	certPEM, err := csr.WaitForCertificate(ctx, client, name, uid)
	if err != nil {
		return fmt.Errorf("TLS bootstrap: waiting for %s: %w", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(kubeletPKIDir, 0o755); err != nil {
		return err
	}
	file := filepath.Join(kubeletPKIDir, "kubelet-client-"+time.Now().Format("2006-01-02-15-04-05")+".pem")
	if err := os.WriteFile(file, append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...), 0o600); err != nil {
		return err
	}
	current := filepath.Join(kubeletPKIDir, "kubelet-client-current.pem")
	_ = os.Remove(current)
	if err := os.Symlink(file, current); err != nil {
		return err
	}
	context := bootstrap.Contexts[bootstrap.CurrentContext]
	if context == nil {
		return fmt.Errorf("%s has no current context", bootstrapConfig)
	}
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["default-cluster"] = bootstrap.Clusters[context.Cluster]
	kubeconfig.AuthInfos["default-auth"] = &clientcmdapi.AuthInfo{ClientCertificate: current, ClientKey: current}
	kubeconfig.Contexts["default-context"] = &clientcmdapi.Context{Cluster: "default-cluster", AuthInfo: "default-auth", Namespace: "default"}
	kubeconfig.CurrentContext = "default-context"
	return clientcmd.WriteToFile(*kubeconfig, kubeletKubeconfig)
}

func (a *nodeAPI) networkReady() bool {
	cni, _ := filepath.Glob("/etc/cni/net.d/*.conf*")
	return len(cni) > 0
}

// syncNode registers the Node and keeps its status: addresses, versions, and Ready, which a real
// kubelet reports only once the container runtime's network is ready (a CNI configuration exists).
func (a *nodeAPI) syncNode(ctx context.Context) error {
	nodes := a.client.CoreV1().Nodes()
	node, err := nodes.Get(ctx, a.k.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.k.nodeName, Labels: map[string]string{
			"kubernetes.io/hostname": a.k.nodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": runtime.GOARCH,
			"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": runtime.GOARCH,
		}}}
		node, err = nodes.Create(ctx, node, metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	if a.node != nil && time.Since(a.node.Status.Conditions[0].LastHeartbeatTime.Time) < 10*time.Second && a.node.UID == node.UID {
		return nil
	}
	now := metav1.Now()
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status", LastHeartbeatTime: now}
	if !a.networkReady() {
		ready.Status, ready.Reason = corev1.ConditionFalse, "KubeletNotReady"
		ready.Message = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
	}
	for _, old := range node.Status.Conditions {
		if old.Type == corev1.NodeReady && old.Status == ready.Status {
			ready.LastTransitionTime = old.LastTransitionTime
		}
	}
	if ready.LastTransitionTime.IsZero() {
		ready.LastTransitionTime = now
	}
	conditions := []corev1.NodeCondition{ready}
	for _, t := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		conditions = append(conditions, corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: "KubeletHas" + "No" + string(t), LastHeartbeatTime: now, LastTransitionTime: metav1.NewTime(a.started)})
	}
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")}
	node.Status.Conditions = conditions
	node.Status.Capacity, node.Status.Allocatable = capacity, capacity
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: a.k.nodeIP}, {Type: corev1.NodeHostName, Address: a.k.nodeName}}
	node.Status.NodeInfo = corev1.NodeSystemInfo{
		KubeletVersion: "v" + a.k.release, OperatingSystem: "linux", Architecture: runtime.GOARCH,
		OSImage: "kubeadm-ha lab host", ContainerRuntimeVersion: "containerd://2.1.0-kubeadm-ha-lab", KernelVersion: kernelRelease(),
	}
	node.Status.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}}
	updated, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	a.node = updated
	return nil
}

func kernelRelease() string {
	data, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return string(trimNewline(data))
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func (a *nodeAPI) renewLease(ctx context.Context) error {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, a.k.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.k.nodeName, OwnerReferences: []metav1.OwnerReference{a.ownerReference()}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(a.k.nodeName), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now},
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if lease.Spec.RenewTime != nil && time.Since(lease.Spec.RenewTime.Time) < 10*time.Second {
		return nil
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

func (a *nodeAPI) ownerReference() metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: a.node.Name, UID: a.node.UID, Controller: ptr.To(true)}
}

// syncMirrorPods keeps one mirror pod per static pod, replaced when the manifest's hash changes, and
// its status: running containers, restarts, and Ready from the probes.
func (a *nodeAPI) syncMirrorPods(ctx context.Context) error {
	pods := a.client.CoreV1().Pods(metav1.NamespaceSystem)
	a.k.mu.Lock()
	type view struct {
		name, hash, seen    string
		spec                corev1.PodSpec
		labels, annotations map[string]string
		statuses            []corev1.ContainerStatus
		ready               bool
	}
	var views []view
	for name, sp := range a.k.pods {
		v := view{name: name, hash: sp.state.Hash, seen: time.Unix(0, sp.state.CreatedAt).UTC().Format(time.RFC3339Nano), spec: *sp.spec.Spec.DeepCopy(), labels: sp.spec.Labels, annotations: sp.spec.Annotations, ready: !sp.state.Stopped}
		for _, c := range sp.spec.Spec.Containers {
			run := sp.containers[c.Name]
			status := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image}
			if run != nil && alive(run.pid) && !sp.state.Stopped {
				status.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(run.started)}
				status.Started, status.Ready, status.RestartCount = ptr.To(true), run.ready, int32(run.restart)
				status.ContainerID = "containerd://" + digestOf(sp.state.UID + c.Name + fmt.Sprint(run.pid))[:32]
			} else {
				status.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}
				if run != nil {
					status.RestartCount = int32(run.restart)
				}
			}
			v.ready = v.ready && status.Ready
			v.statuses = append(v.statuses, status)
		}
		views = append(views, v)
	}
	a.k.mu.Unlock()
	// The node authorizer lets a node read only the pods bound to it: listed, as a kubelet's informer does.
	list, err := pods.List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + a.k.nodeName})
	if err != nil {
		return err
	}
	bound := map[string]*corev1.Pod{}
	for i := range list.Items {
		bound[list.Items[i].Name] = &list.Items[i]
	}
	for _, v := range views {
		mirror, err := bound[v.name], error(nil)
		if mirror == nil {
			err = apierrors.NewNotFound(corev1.Resource("pods"), v.name)
		}
		if err == nil && mirror.Annotations["kubernetes.io/config.hash"] != v.hash {
			if err := pods.Delete(ctx, v.name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			err = apierrors.NewNotFound(corev1.Resource("pods"), v.name)
		}
		if apierrors.IsNotFound(err) {
			spec := v.spec
			spec.NodeName = a.k.nodeName
			// The manifest's annotations (kubeadm reads the API server's advertised endpoint from one) and the kubelet's own.
			annotations := map[string]string{"kubernetes.io/config.hash": v.hash, "kubernetes.io/config.mirror": v.hash, "kubernetes.io/config.seen": v.seen, "kubernetes.io/config.source": "file"}
			for key, value := range v.annotations {
				annotations[key] = value
			}
			mirror = &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: v.name, Namespace: metav1.NamespaceSystem, Labels: v.labels, OwnerReferences: []metav1.OwnerReference{a.ownerReference()},
					Annotations: annotations},
				Spec: spec,
			}
			mirror, err = pods.Create(ctx, mirror, metav1.CreateOptions{})
		}
		if err != nil {
			return fmt.Errorf("mirror pod %s: %w", v.name, err)
		}
		condition := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
			status := corev1.ConditionFalse
			if ok {
				status = corev1.ConditionTrue
			}
			return corev1.PodCondition{Type: t, Status: status, LastTransitionTime: metav1.Now()}
		}
		mirror.Status = corev1.PodStatus{
			Phase: corev1.PodRunning, HostIP: a.k.nodeIP, PodIP: a.k.nodeIP, StartTime: ptr.To(metav1.Now()),
			HostIPs: []corev1.HostIP{{IP: a.k.nodeIP}}, PodIPs: []corev1.PodIP{{IP: a.k.nodeIP}},
			Conditions: []corev1.PodCondition{
				condition(corev1.PodScheduled, true), condition(corev1.PodInitialized, true),
				condition(corev1.ContainersReady, v.ready), condition(corev1.PodReady, v.ready),
			},
			ContainerStatuses: v.statuses,
			QOSClass:          corev1.PodQOSBurstable,
		}
		if _, err := pods.UpdateStatus(ctx, mirror, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("mirror pod %s status: %w", v.name, err)
		}
	}
	// Mirror pods of static pods that no longer run here.
	known := map[string]bool{}
	for _, v := range views {
		known[v.name] = true
	}
	for _, p := range list.Items {
		if _, mirror := p.Annotations["kubernetes.io/config.mirror"]; mirror && !known[p.Name] {
			_ = pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		}
	}
	return nil
}
