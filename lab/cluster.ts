/**
 * The program's own steps on lab hosts (lab/hosts.ts): each instance the program declares becomes a
 * host at its planned address and name, prepared as its user data prepares an EC2 node, with the
 * real kubeadm, kubectl and control-plane binaries of its release (lab/build); the load balancer is
 * HAProxy in a namespace of its own at the address its DNS name resolves to on every host, its
 * servers the target group's attachments; and each `up` applies the run to the hosts as `pulumi up`
 * does (tools/offline/apply.ts, the engine the lifecycle simulation shares): every remote command to
 * create, update or replace runs on the host its connection reaches, exactly as rendered (`sudo bash`
 * of the step's script, its stdin as the command's stdin); a host that is gone costs the step its
 * dial limit; instances the run no longer declares are terminated once the `up` succeeds.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ProgramRun } from "../tools/offline/engine";
import { Applied, applyUp, instanceIdOf, instanceOf, PlannedStep, plannedInstances, StepRun, unreachable } from "../tools/offline/apply";
import { HEALTH_CHECK } from "../components/load-balancer";
import { PORTS } from "../core/plan";
import { ETCD_RELEASE } from "../core/etcd";
import { Lab, RunResult } from "./hosts";
import { labCache, releaseDir } from "./releases";

/** The etcd backup units that upload to S3 (core/backup.ts), which the lab's systemctl records but does not run. */
const UPLOAD_UNITS = ["kubeadm-ha-etcd-upload.service", "kubeadm-ha-etcd-snapshot-now.service"];

const INSTANCE_TYPE = "aws:ec2/instance:Instance";
const LB_TYPE = "aws:lb/loadBalancer:LoadBalancer";
const TARGET_GROUP_TYPE = "aws:lb/targetGroup:TargetGroup";
const ATTACHMENT_TYPE = "aws:lb/targetGroupAttachment:TargetGroupAttachment";
/** The load balancer's address on the lab's network: in the VPC, outside every subnet's node range. */
const LB_IP = "10.0.255.250";
/** The deployer's address: the user's machine, on the lab's network. */
const DEPLOYER_IP = "10.0.255.240";

/** A step as the lifecycle engine records it, with what it printed on each stream and how long it ran. */
export interface StepResult extends StepRun, RunResult {
    seconds: number;
}

export class LabCluster {
    /** Instance id → lab host id. */
    readonly hostOfInstance = new Map<string, string>();
    /** The last run applied without a failure: what the next `up` is diffed against. */
    previous?: ProgramRun;

    constructor(
        readonly lab: Lab,
        private readonly nodeAgent: string,
    ) {}

    /** The load balancer's DNS name, as the program's kubeadm configuration names the endpoint. */
    static endpointName(run: ProgramRun): string {
        return run.ofType(LB_TYPE)[0].state.dnsName as string;
    }

    /**
     * Starts a host for each instance of the run not started yet, prepared with its release. Host ids
     * name the tier and index (`cp1`), and a replacement's generation (`cp1g2`).
     */
    boot(run: ProgramRun, release: string): void {
        // Refused before any host starts: nothing half-booted.
        if (run.ofType(INSTANCE_TYPE).some((i) => i.inputs.tags?.["kubeadm-ha/role"] === "etcd")) {
            throw new Error(
                `the lab runs stacked etcd only: external members run etcd ${ETCD_RELEASE.version}, which this machine's Go module proxy does not serve`,
            );
        }
        const lbName = LabCluster.endpointName(run);
        for (const instance of run.ofType(INSTANCE_TYPE)) {
            const instanceId = instanceIdOf(run, instance.name);
            if (this.hostOfInstance.has(instanceId)) continue;
            const generation = /-g(\d+)$/.exec(instanceId)?.[1];
            const id = instance.name.replace(/^.*-(cp|etcd)-(\d+)$/, "$1$2") + (generation ? `g${generation}` : "");
            this.lab.addHost({ id, hostname: instance.state.privateDns as string, ip: instance.state.privateIp as string }, { [lbName]: LB_IP });
            this.hostOfInstance.set(instanceId, id);
            this.prepareControlPlane(id, release);
        }
    }

    /** Hosts whose instance the run no longer declares are terminated, as Pulumi deletes replaced and removed instances. */
    terminateUnplanned(run: ProgramRun): void {
        const planned = plannedInstances(run);
        for (const [instanceId, host] of this.hostOfInstance) if (!planned.has(instanceId) && this.lab.alive(host)) this.lab.kill(host);
    }

    /** The lab host of the instance named `instance` (its logical name, as `kubeadm-ha-cp-1`) in `run`. */
    hostOf(run: ProgramRun, instance: string): string {
        const host = this.hostOfInstance.get(instanceIdOf(run, instance));
        if (!host) throw new Error(`${instance} has no lab host`);
        return host;
    }

    /**
     * What prepare-node.sh leaves on a node, with the lab's parts: kubeadm and kubectl of the release
     * (the real binaries), the kubelet stand-in as the kubelet, the CRI stand-in as containerd (its
     * configuration's sandbox image set by the program's own containerd_pause_image) and crictl over
     * it, and the marker the program's first step waits for. It does not run prepare-node.sh itself:
     * its apt and curl reach the internet.
     */
    private prepareControlPlane(id: string, release: string): void {
        const bin = releaseDir("kubernetes", release);
        const pause = readFileSync(join(__dirname, "..", "scripts", "containerd-pause.sh"), "utf8");
        const script = [
            "set -euo pipefail",
            `install -m 0755 ${join(__dirname, "shims", "systemctl")} /usr/local/sbin/systemctl`,
            `install -m 0755 ${join(__dirname, "shims", "journalctl")} /usr/local/bin/journalctl`,
            `install -m 0755 ${join(__dirname, "shims", "cloud-init")} /usr/local/bin/cloud-init`,
            // The host key the image's first boot makes; the steps print it and later ones are pinned to it.
            "mkdir -p /etc/ssh /var/lib/kubeadm-ha && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key",
            `install -m 0755 ${bin}/kubeadm ${bin}/kubectl /usr/bin/`,
            `printf '#!/bin/sh\\nLAB_KUBELET_RELEASE=${release} LAB_CACHE=${labCache()} exec ${this.nodeAgent} kubelet "$@"\\n' >/usr/bin/kubelet`,
            `printf '#!/bin/sh\\nLAB_CACHE=${labCache()} exec ${this.nodeAgent} crictl "$@"\\n' >/usr/local/bin/crictl`,
            "chmod 0755 /usr/bin/kubelet /usr/local/bin/crictl",
            "mkdir -p /etc/lab-systemd/units /etc/lab-systemd/record-only /etc/containerd",
            // Uploads need S3 and the instance metadata service, which the lab does not have.
            ...UPLOAD_UNITS.map((u) => `echo 'it uploads to S3, and the lab has no S3 or instance metadata service' >/etc/lab-systemd/record-only/${u}`),
            `echo ${this.nodeAgent} containerd >/etc/lab-systemd/units/containerd.service`,
            "echo /usr/bin/kubelet >/etc/lab-systemd/units/kubelet.service",
            // containerd 2.x's default: the pinned sandbox image, which containerd_pause_image sets.
            `printf '%s\\n' 'version = 3' '[plugins]' "  [plugins.'io.containerd.cri.v1.images']" "    [plugins.'io.containerd.cri.v1.images'.pinned_images]" "      sandbox = 'registry.k8s.io/pause:3.10'" >/etc/containerd/config.toml`,
            pause,
            "containerd_pause_image /etc/containerd/config.toml >/dev/null",
            // The pod network's DaemonSet writes a CNI configuration on every node, and cannot run in
            // the lab (no container runtime): the lab writes one, so the runtime's network and the Node go Ready.
            "mkdir -p /etc/cni/net.d",
            `printf '%s\\n' '{"cniVersion": "1.0.0", "name": "lab-pod-network", "plugins": [{"type": "loopback"}]}' >/etc/cni/net.d/10-lab-pod-network.conflist`,
            "systemctl enable --now containerd",
            "systemctl enable kubelet",
            'echo "kubeadm $(kubeadm version -o short)" >/var/lib/kubeadm-ha/prepared',
        ].join("\n");
        const result = this.lab.run(id, script);
        if (result.status !== 0) throw new Error(`preparing lab host ${id} failed: ${result.stdout}${result.stderr}`);
    }

    /**
     * HAProxy as the NLB: TCP on 6443 to the target group's attachments, health-checked as the target
     * group checks. Started by the first run; later runs reload it with their servers, the old process
     * finishing its connections (`-sf`), as a target group's deregistration drains.
     */
    syncLoadBalancer(run: ProgramRun): void {
        const group = run.ofType(TARGET_GROUP_TYPE)[0].inputs.healthCheck as {
            path: string;
            interval: number;
            timeout: number;
            healthyThreshold: number;
            unhealthyThreshold: number;
        };
        if (group.interval !== HEALTH_CHECK.intervalSeconds) throw new Error("the target group's health check is not the one the lab expects");
        const addressOf = new Map(run.ofType(INSTANCE_TYPE).map((i) => [instanceIdOf(run, i.name), i.state.privateIp as string]));
        const servers = run
            .ofType(ATTACHMENT_TYPE)
            .map((a) => `    server ${a.name} ${addressOf.get(a.inputs.targetId)}:${a.inputs.port ?? PORTS.apiServer} check check-ssl verify none`);
        const config = [
            "global",
            "    log stdout format raw local0",
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 1h",
            "    timeout server 1h",
            "frontend api",
            `    bind ${LB_IP}:${PORTS.apiServer}`,
            "    default_backend api-servers",
            "backend api-servers",
            `    option httpchk GET ${group.path}`,
            "    http-check expect status 200",
            `    default-server inter ${group.interval}s rise ${group.healthyThreshold} fall ${group.unhealthyThreshold}`,
            `    timeout check ${group.timeout}s`,
            ...servers,
            "",
        ].join("\n");
        if (!this.lab.has("lb")) this.lab.addHost({ id: "lb", hostname: "lb.lab", ip: LB_IP });
        const written = this.lab.run("lb", `mkdir -p /etc/haproxy && cat >/etc/haproxy/lab.cfg && haproxy -c -q -f /etc/haproxy/lab.cfg`, { stdin: config });
        if (written.status !== 0) throw new Error(`the load balancer's configuration is refused: ${written.stderr}`);
        // Daemonised in the host's PID namespace, so it ends with the host; a reload replaces the old process.
        const started = this.lab.run(
            "lb",
            "old=$(cat /run/haproxy.pid 2>/dev/null || true); haproxy -D -p /run/haproxy.pid -f /etc/haproxy/lab.cfg ${old:+-sf $old} >>/var/log/haproxy.log 2>&1 </dev/null",
        );
        if (started.status !== 0) throw new Error(`the load balancer did not start: ${started.stdout}${started.stderr}`);
    }

    /**
     * The deployer: a host on the lab's network with the release's kubectl and etcdctl and the
     * program's admin kubeconfig (its `kubeconfig` output), which reaches the API through the load
     * balancer's name, as a user's machine does.
     */
    addDeployer(run: ProgramRun, release: { kubernetes: string }): void {
        this.lab.addHost({ id: "deployer", hostname: "deployer.lab", ip: DEPLOYER_IP }, { [LabCluster.endpointName(run)]: LB_IP });
        const bin = releaseDir("kubernetes", release.kubernetes);
        const result = this.lab.run(
            "deployer",
            `install -m 0755 ${bin}/kubectl /usr/local/bin/kubectl && install -d -m 0700 /root/.kube && umask 077 && cat >/root/.kube/config`,
            {
                stdin: run.outputs.kubeconfig as string,
            },
        );
        if (result.status !== 0) throw new Error(`preparing the deployer failed: ${result.stderr}`);
    }

    /** Runs a command line on the deployer. */
    deployer(line: string, stdin?: string): RunResult {
        return this.lab.run("deployer", line, { stdin });
    }

    /** Runs a planned step on the host its connection reaches; a host that is gone costs the step its dial limit. */
    private execute(step: PlannedStep): StepResult {
        const instanceId = instanceOf(step.run, step.command);
        const host = this.hostOfInstance.get(instanceId);
        if (!host) throw new Error(`${step.command.name} reaches instance ${instanceId}, which is no lab host`);
        if (!this.lab.alive(host)) return { ...unreachable(step, host), stdout: "", stderr: "dial: host unreachable", seconds: 0 };
        const started = Date.now();
        const ran = this.lab.run(host, step.line, { stdin: (step.inputs.stdin as string) ?? "" });
        const seconds = (Date.now() - started) / 1000;
        return { step: step.command.name, action: step.action, host, dialSeconds: 0, output: ran.stdout + ran.stderr, ...ran, seconds };
    }

    /**
     * One `pulumi up` of `run` on the lab: its new instances booted, the load balancer's servers set,
     * its commands applied over the last successful run's (every command created, on the first), and
     * on success the instances it no longer declares terminated. `onStep` sees each step as it ends.
     */
    up(run: ProgramRun, release: string, onStep?: (result: StepResult) => void): Applied<StepResult> {
        this.boot(run, release);
        this.syncLoadBalancer(run);
        const applied = this.applySteps(this.previous, run, onStep);
        if (!applied.failed) {
            this.terminateUnplanned(run);
            this.previous = run;
        }
        return applied;
    }

    /** The run's commands applied over `previous` (none: every command's create runs, in order) on the lab's hosts. */
    applySteps(previous: ProgramRun | undefined, run: ProgramRun, onStep?: (result: StepResult) => void): Applied<StepResult> {
        return applyUp(previous, run, (step) => {
            const result = this.execute(step);
            onStep?.(result);
            return result;
        });
    }
}
