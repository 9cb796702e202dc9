package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// The kubelet's API on 10250, as far as the program uses it: `kubectl exec` into a static pod (the
// steps run etcdctl in the etcd pod). It serves a self-signed certificate, as a kubelet does without
// serving-certificate rotation, and authorizes every caller: it is reachable only on the lab's network.
func (k *kubelet) serveAPI() {
	certificate, err := selfSignedCertificate(k.nodeName, k.nodeIP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubelet API:", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/", k.serveExec)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	server := &http.Server{Addr: ":10250", Handler: mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: &tls.Config{Certificates: []tls.Certificate{certificate}, MinVersion: tls.VersionTLS12}}
	for {
		fmt.Fprintln(os.Stderr, "kubelet API:", server.ListenAndServeTLS("", ""))
		time.Sleep(time.Second)
	}
}

func selfSignedCertificate(name, ip string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name + "@" + fmt.Sprint(time.Now().Unix())},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{name},
	}
	if parsed := net.ParseIP(ip); parsed != nil {
		template.IPAddresses = []net.IP{parsed}
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// serveExec: /exec/<namespace>/<pod>/<container>?command=...&stdin=..&stdout=..&stderr=..
func (k *kubelet) serveExec(w http.ResponseWriter, req *http.Request) {
	parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/exec/"), "/")
	if len(parts) < 3 {
		http.Error(w, "expected /exec/<namespace>/<pod>/<container>", http.StatusBadRequest)
		return
	}
	options, err := remotecommand.NewOptions(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	remotecommand.ServeExec(w, req, k, parts[1], "", parts[len(parts)-1], req.URL.Query()["command"], options, 4*time.Hour, 30*time.Second, remotecommand.SupportedStreamingProtocols)
}

// ExecInContainer runs the command on the host, as the container would (every static pod shares the
// host's namespaces here): a program of the container's image is the lab's build of it.
func (k *kubelet) ExecInContainer(ctx context.Context, podName, _ string, containerName string, command []string, in io.Reader, out, errOut io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize, _ time.Duration) error {
	if len(command) == 0 {
		return errors.New("no command")
	}
	k.mu.Lock()
	sp := k.pods[podName]
	image := ""
	if sp != nil {
		for _, c := range sp.spec.Spec.Containers {
			if c.Name == containerName {
				image = c.Image
			}
		}
	}
	k.mu.Unlock()
	if image == "" {
		return fmt.Errorf("container %s of pod %s is not found", containerName, podName)
	}
	cmd := containerCommand(ctx, k.labCache, image, command)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	if err != nil && filepath.Base(cmd.Path) == cmd.Path {
		return utilexec.CodeExitError{Err: err, Code: 126}
	}
	return err
}

// containerCommand is a command run in a container, as the lab runs one (every static pod shares the
// host's namespaces here): a program of the container's image is the lab's build of it, any other
// is looked up on the host's PATH; from /, with a container's minimal environment, not the caller's.
// Used by `kubectl exec` (through the stand-in's API) and by the lab's crictl.
func containerCommand(ctx context.Context, labCache, image string, command []string) *exec.Cmd {
	program := command[0]
	if built, err := binaryFor(labCache, image, command[0]); err == nil {
		program = built
	} else if !strings.Contains(program, "/") {
		if found, err := exec.LookPath(program); err == nil {
			program = found
		}
	}
	cmd := exec.CommandContext(ctx, program, command[1:]...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	return cmd
}
