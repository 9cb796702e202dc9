/**
 * The program's own steps on lab hosts (lab/hosts.ts): each instance the program declares becomes a
 * host at its planned address and name, prepared as its user data prepares an EC2 node, with the
 * real kubeadm, kubectl and control-plane binaries of its release (lab/build); the load balancer is
 * HAProxy in a namespace of its own at the address its DNS name resolves to on every host; and the
 * remote commands run, in the order their dependencies give, on the host their connection reaches,
 * exactly as rendered (`sudo bash` of the step's script, its stdin as the command's stdin).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ProgramRun, RecordedResource } from "../tools/offline/engine";
import { COMMAND_TYPE } from "../tools/offline/graph";
import { HEALTH_CHECK } from "../components/load-balancer";
import { PORTS } from "../core/plan";
import { Lab, RunResult } from "./hosts";
import { labCache, releaseDir } from "./releases";

const INSTANCE_TYPE = "aws:ec2/instance:Instance";
const EIP_TYPE = "aws:ec2/eip:Eip";
const LB_TYPE = "aws:lb/loadBalancer:LoadBalancer";
const TARGET_GROUP_TYPE = "aws:lb/targetGroup:TargetGroup";
/** The load balancer's address on the lab's network: in the VPC, outside every subnet's node range. */
const LB_IP = "10.0.255.250";
/** The deployer's address: the user's machine, on the lab's network. */
const DEPLOYER_IP = "10.0.255.240";

export interface StepResult extends RunResult {
    step: string;
    host: string;
    seconds: number;
}

/** Commands in an order their dependencies allow (depth first, then name), as the lifecycle engine runs them. */
export function commandsInOrder(run: ProgramRun): RecordedResource[] {
    const commands = run.ofType(COMMAND_TYPE);
    const depth = new Map<string, number>();
    const depthOf = (c: RecordedResource): number => {
        if (!depth.has(c.name)) depth.set(c.name, 1 + Math.max(0, ...commands.filter((o) => o !== c && run.waitsFor(c.name, o.name)).map(depthOf)));
        return depth.get(c.name)!;
    };
    return [...commands].sort((a, b) => depthOf(a) - depthOf(b) || a.name.localeCompare(b.name));
}

export class LabCluster {
    /** Instance name → lab host id. */
    readonly hostOfInstance = new Map<string, string>();

    constructor(
        readonly lab: Lab,
        private readonly nodeAgent: string,
    ) {}

    /** The load balancer's DNS name, as the program's kubeadm configuration names the endpoint. */
    static endpointName(run: ProgramRun): string {
        return run.ofType(LB_TYPE)[0].state.dnsName as string;
    }

    /** Starts a host for each instance of the run not started yet, prepared with its release. */
    boot(run: ProgramRun, release: string): void {
        const lbName = LabCluster.endpointName(run);
        for (const instance of run.ofType(INSTANCE_TYPE)) {
            if (this.hostOfInstance.has(instance.name)) continue;
            const id = instance.name.replace(/^.*-(cp|etcd)-(\d+)$/, "$1$2");
            this.lab.addHost({ id, hostname: instance.state.privateDns as string, ip: instance.state.privateIp as string }, { [lbName]: LB_IP });
            this.hostOfInstance.set(instance.name, id);
            const role = instance.inputs.tags?.["kubeadm-ha/role"] === "etcd" ? "etcd" : "control-plane";
            if (role === "control-plane") this.prepareControlPlane(id, release);
        }
    }

    /**
     * What prepare-node.sh leaves on a node, with the lab's parts: kubeadm and kubectl of the release
     * (the real binaries), the kubelet stand-in as the kubelet, the CRI stand-in as containerd (its
     * configuration's sandbox image set by the program's own containerd_pause_image), swap off, the
     * sysctls, and the marker the program's first step waits for. It does not run prepare-node.sh
     * itself: its apt and curl reach the internet.
     */
    private prepareControlPlane(id: string, release: string): void {
        const bin = releaseDir("kubernetes", release);
        const pause = readFileSync(join(__dirname, "..", "scripts", "containerd-pause.sh"), "utf8");
        const script = [
            "set -euo pipefail",
            `install -m 0755 ${bin}/kubeadm ${bin}/kubectl /usr/bin/`,
            `printf '#!/bin/sh\\nLAB_KUBELET_RELEASE=${release} LAB_CACHE=${labCache()} exec ${this.nodeAgent} kubelet "$@"\\n' >/usr/bin/kubelet`,
            "chmod 0755 /usr/bin/kubelet",
            `install -m 0755 ${join(__dirname, "shims", "systemctl")} /usr/local/sbin/systemctl`,
            `install -m 0755 ${join(__dirname, "shims", "cloud-init")} /usr/local/bin/cloud-init`,
            // The host key the image's first boot makes; the steps print it and later ones are pinned to it.
            "mkdir -p /etc/ssh && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key",
            "mkdir -p /etc/lab-systemd/units /etc/containerd /var/lib/kubeadm-ha",
            `echo ${this.nodeAgent} containerd >/etc/lab-systemd/units/containerd.service`,
            "echo /usr/bin/kubelet >/etc/lab-systemd/units/kubelet.service",
            // containerd 2.x's default: the pinned sandbox image, which containerd_pause_image sets.
            `printf '%s\\n' 'version = 3' '[plugins]' "  [plugins.'io.containerd.cri.v1.images']" "    [plugins.'io.containerd.cri.v1.images'.pinned_images]" "      sandbox = 'registry.k8s.io/pause:3.10'" >/etc/containerd/config.toml`,
            pause,
            "containerd_pause_image /etc/containerd/config.toml >/dev/null",
            "systemctl enable --now containerd",
            "systemctl enable kubelet",
            'echo "kubeadm $(kubeadm version -o short)" >/var/lib/kubeadm-ha/prepared',
        ].join("\n");
        const result = this.lab.run(id, script);
        if (result.status !== 0) throw new Error(`preparing lab host ${id} failed: ${result.stdout}${result.stderr}`);
    }

    /** HAProxy as the NLB: TCP on 6443 to every control-plane node, health-checked as the target group checks. */
    startLoadBalancer(run: ProgramRun): void {
        const group = run.ofType(TARGET_GROUP_TYPE)[0].inputs.healthCheck as {
            path: string;
            interval: number;
            timeout: number;
            healthyThreshold: number;
            unhealthyThreshold: number;
        };
        if (group.interval !== HEALTH_CHECK.intervalSeconds) throw new Error("the target group's health check is not the one the lab expects");
        const servers = run
            .ofType(INSTANCE_TYPE)
            .filter((i) => i.inputs.tags?.["kubeadm-ha/role"] !== "etcd")
            .map((i) => `    server ${i.name} ${i.state.privateIp}:${PORTS.apiServer} check check-ssl verify none`);
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
        this.lab.addHost({ id: "lb", hostname: "lb.lab", ip: LB_IP });
        const written = this.lab.run("lb", `mkdir -p /etc/haproxy && cat >/etc/haproxy/lab.cfg && haproxy -c -q -f /etc/haproxy/lab.cfg`, { stdin: config });
        if (written.status !== 0) throw new Error(`the load balancer's configuration is refused: ${written.stderr}`);
        // In the background, in the host's PID namespace: it ends with the host.
        const started = this.lab.run("lb", "setsid haproxy -db -f /etc/haproxy/lab.cfg >/var/log/haproxy.log 2>&1 </dev/null & echo started");
        if (started.status !== 0) throw new Error(`the load balancer did not start: ${started.stderr}`);
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

    /** Runs the run's commands in order, each on the host its connection reaches, stopping at the first failure. */
    runSteps(run: ProgramRun, onStep?: (result: StepResult) => void): StepResult[] {
        const results: StepResult[] = [];
        for (const command of commandsInOrder(run)) {
            const eip = run.ofType(EIP_TYPE).find((e) => e.state.publicIp === command.inputs.connection.host);
            const host = this.hostOfInstance.get(eip?.name.replace(/-address$/, "") ?? "");
            if (!host) throw new Error(`${command.name} reaches ${command.inputs.connection.host}, which is no lab host`);
            const started = Date.now();
            const ran = this.lab.run(host, command.inputs.create as string, { stdin: (command.inputs.stdin as string) ?? "" });
            const result = { step: command.name, host, ...ran, seconds: (Date.now() - started) / 1000 };
            results.push(result);
            onStep?.(result);
            if (result.status !== 0) break;
        }
        return results;
    }
}
