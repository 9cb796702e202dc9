/**
 * The instance metadata service for root only: the guard every node's user data starts with, checked
 * by shellcheck and then by the kernel itself. It is installed under a scratch root (its systemctl a
 * stand-in), and its apply script loads the rules it installed into a network namespace of its own,
 * where 169.254.169.254 is a local address with a listener: root gets an answer, another user a reset
 * at once, as a closed port (curl's exit 7), rather than a wait.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withMetadataGuard } from "../core/metadata-guard";
import { renderEtcdUserData, renderUserData } from "../core/scripts";
import { requireTool, shellcheck, tempDir } from "./tools";

const guarded = [
    ["control-plane", withMetadataGuard(renderUserData({ minor: "1.34", patch: "1.34.2" }))],
    ["etcd", withMetadataGuard(renderEtcdUserData())],
];

describe("the metadata guard", () => {
    it.each(guarded)("runs first in the %s user data, which passes shellcheck", (_tier, userData) => {
        expect(userData.split("\n")[0]).toBe("#!/usr/bin/env bash");
        const guard = userData.indexOf("the instance metadata service for root only");
        expect(guard).toBeGreaterThan(0);
        expect(guard).toBeLessThan(userData.indexOf("preparation. Holds no secret"));
        expect(shellcheck(userData)).toBe("");
    });

    it("only root reaches 169.254.169.254 once its rules are loaded, and loading them again changes nothing", () => {
        for (const [tool, pkg] of [
            ["iptables-restore", "iptables"],
            ["unshare", "util-linux"],
            ["setpriv", "util-linux"],
            ["curl", "curl"],
            ["ip", "iproute2"],
        ])
            requireTool(tool, pkg);
        // Installed as on a node, under a scratch root; systemctl only notes what it was asked.
        const root = tempDir("imds-guard");
        const bin = join(root, "bin");
        mkdirSync(bin);
        writeFileSync(join(bin, "systemctl"), `#!/bin/sh\necho "$*" >> "${root}/systemctl.log"\n`);
        chmodSync(join(bin, "systemctl"), 0o755);
        const script = /^#!.*\n([\s\S]*?)\n# kubeadm-ha node preparation/.exec(guarded[0][1])![1];
        execFileSync("bash", ["-c", script], { env: { PATH: `${bin}:${process.env.PATH}`, KUBEADM_HA_ROOT: root }, stdio: "pipe" });
        expect(readFileSync(join(root, "systemctl.log"), "utf8")).toBe("daemon-reload\nenable --now kubeadm-ha-imds-guard.service\n");
        const unit = readFileSync(join(root, "etc/systemd/system/kubeadm-ha-imds-guard.service"), "utf8");
        expect(unit).toMatch(/^ExecStart=\/usr\/local\/sbin\/kubeadm-ha-imds-guard$/m);
        expect(unit).toMatch(/^Before=.*containerd\.service kubelet\.service/m);

        const apply = join(root, "usr/local/sbin/kubeadm-ha-imds-guard");
        const rules = join(root, "etc/kubeadm-ha/imds-guard.rules");
        const listener = `require("node:http").createServer((q, r) => r.end("instance metadata")).listen(80, "169.254.169.254", () => console.log("listening"))`;
        const inNamespace = [
            "set -eu",
            "ip link set lo up",
            "ip addr add 169.254.169.254/32 dev lo",
            // The node's own address, which its requests leave from (and a reset returns to).
            "ip addr add 10.0.16.10/32 dev lo",
            `${apply} ${rules}`,
            `${apply} ${rules}`,
            `${JSON.stringify(process.execPath)} -e '${listener}' > ${root}/listener.log 2>&1 &`,
            "listener=$!",
            `for _ in $(seq 100); do grep -q listening ${root}/listener.log && break; sleep 0.1; done`,
            "curl='curl --silent --noproxy * --interface 10.0.16.10 --max-time 5 http://169.254.169.254/'",
            'echo "root: $($curl || echo failed $?)"',
            'echo "nobody: $(setpriv --reuid=65534 --regid=65534 --clear-groups $curl || echo failed $?)"',
            "iptables -S OUTPUT; iptables -S KUBEADM-HA-IMDS",
            'kill "$listener"',
        ].join("\n");
        const run = spawnSync("unshare", ["--net", "sh", "-c", inNamespace], { encoding: "utf8", timeout: 60_000 });
        expect(run.stderr).toBe("");
        const lines = run.stdout.trim().split("\n");
        expect(lines.slice(0, 2)).toEqual(["root: instance metadata", "nobody: failed 7"]);
        // One jump, first in OUTPUT, and the chain's three rules, once each, after two loads.
        expect(lines.filter((l) => l.startsWith("-A OUTPUT"))).toEqual(["-A OUTPUT -d 169.254.169.254/32 -j KUBEADM-HA-IMDS"]);
        expect(lines.filter((l) => l.startsWith("-A KUBEADM-HA-IMDS"))).toHaveLength(3);
    });
});
