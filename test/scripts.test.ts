import { etcdFlags, renderEtcdUnit } from "../core/etcd";
import { externalBackupTarget, STACKED_BACKUP_TARGET } from "../core/backup";
import {
    ETCD_BACKUP_REMOVE,
    renderEtcdBackupInstall,
    renderEtcdBackupProgram,
    renderEtcdUserData,
    renderRemoteCommand,
    renderStepScript,
    renderUserData,
    RemoteStep,
    shellQuote,
} from "../core/scripts";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PkiFile, renderPkiBundle } from "../core/pki";
import { shellcheck, tempDir, writeTemp } from "./tools";
import { binary, CURRENT } from "../lab/releases";

const STEPS: [RemoteStep, Record<string, string>][] = [
    ["wait-for-prepare", {}],
    ["place-pki", {}],
    [
        "kubeadm-control-plane",
        {
            NODE_NAME: "ip-10-0-0-10.ec2.internal",
            NODE_IP: "10.0.0.10",
            ENDPOINT_HOST: "api.example",
            API_SERVERS: "10.0.16.11 10.0.32.12",
            PLANNED_NODES: "ip-10-0-0-10.ec2.internal ip-10-0-16-11.ec2.internal ip-10-0-32-12.ec2.internal",
            STACKED: "true",
            KUBERNETES_VERSION: "1.37.2",
            RENEW_WITHIN_DAYS: "60",
        },
    ],
    ["cluster-init", { NODE_NAME: "ip-10-0-0-10.ec2.internal", NODE_IP: "10.0.0.10", ENDPOINT_HOST: "api.example", API_SERVERS: "10.0.16.11 10.0.32.12" }],
    ["membership", { PLANNED_NODES: "ip-10-0-0-10.ec2.internal ip-10-0-16-11.ec2.internal", STACKED: "true" }],
    ["place-pki", { PKI_DIR: "/etc/etcd/pki", STAGED_PKI_DIR: "/etc/kubeadm-ha/etcd-pki" }],
    [
        "etcd-member",
        {
            MEMBER_NAME: "demo-etcd-0",
            MEMBER_IP: "10.0.0.20",
            INITIAL_CLUSTER: "demo-etcd-0=https://10.0.0.20:2380",
            PEER_IPS: "10.0.16.21 10.0.32.22",
            ETCD_UNIT: renderEtcdUnit(etcdFlags({ name: "demo-etcd-0", ip: "10.0.0.20" }, "demo-etcd")),
            PKI_DIR: "/etc/etcd/pki",
        },
    ],
    ["api-reachable", { ENDPOINT_HOST: "api.example" }],
    ["etcd-health", { MEMBER_IP: "10.0.0.20", EXPECTED_MEMBERS: "3", PKI_DIR: "/etc/etcd/pki" }],
];

describe("rendered scripts", () => {
    it("user data passes shellcheck for a minor and for a pinned release", () => {
        expect(shellcheck(renderUserData({ minor: "1.37" }))).toBe("");
        expect(shellcheck(renderUserData({ minor: "1.37", patch: "1.37.2" }))).toBe("");
        expect(shellcheck(renderEtcdUserData())).toBe("");
        expect(shellcheck(renderEtcdBackupProgram())).toBe("");
        expect(shellcheck(`#!/bin/bash\n${ETCD_BACKUP_REMOVE}`)).toBe("");
        for (const target of [STACKED_BACKUP_TARGET, externalBackupTarget("10.0.0.110")]) {
            expect(shellcheck(`#!/bin/bash\n${renderEtcdBackupInstall(target, 48)}`)).toBe("");
        }
    });

    it.each(STEPS)("step %s passes shellcheck as a script and as the remote command line", (step, params) => {
        expect(shellcheck(renderStepScript(step, params))).toBe("");
        expect(shellcheck("#!/bin/bash\n" + renderRemoteCommand(step, params))).toBe("");
    });

    it("quotes parameters so a hostile value stays one word", () => {
        const script = renderStepScript("api-reachable", { NODE_NAME: "a'; rm -rf / #" });
        expect(script).toContain(`NODE_NAME=${shellQuote("a'; rm -rf / #")}`);
        expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    });

    it("rejects parameter names that are not shell variables", () => {
        expect(() => renderStepScript("api-reachable", { "NODE NAME": "x" })).toThrow(/bad script parameter name/);
    });
});

describe("the shellcheck harness", () => {
    it("reports a real finding, so a clean result means something", () => {
        expect(shellcheck("#!/bin/bash\nrm -rf $1/tmp\n")).toMatch(/SC2086/);
    });
});

describe("remote steps, run for real in a scratch directory", () => {
    // The scripts' paths all sit under KUBEADM_HA_ROOT, which the scratch directory stands in for.
    let root = "";
    const run = (script: string, stdin: string) =>
        spawnSync("bash", ["-c", script], { input: stdin, encoding: "utf8", env: { ...process.env, KUBEADM_HA_ROOT: root } });
    const scratch = () => {
        const dir = tempDir("step");
        root = dir;
        return { dir, params: { PKI_OWNER: `${process.getuid!()}:${process.getgid!()}` } };
    };

    it("place-pki writes every file of its stdin bundle with its mode, staged and placed", () => {
        const { dir, params } = scratch();
        const files: PkiFile[] = [
            { path: "ca.crt", mode: "0644", content: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" },
            { path: "etcd/ca.key", mode: "0600", content: "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n" },
        ];
        const result = run(renderStepScript("place-pki", params), renderPkiBundle(files));
        const placed = join(dir, "etc/kubernetes/pki");
        expect([result.status, result.stdout.trim()]).toEqual([0, `[kubeadm-ha] placed 2 certificate and key files in ${placed}`]);
        for (const f of files) {
            for (const where of [placed, join(dir, "etc/kubeadm-ha/pki")]) {
                expect(readFileSync(join(where, f.path), "utf8")).toBe(f.content);
                expect((statSync(join(where, f.path)).mode & 0o777).toString(8).padStart(4, "0")).toBe(f.mode);
            }
        }
    });

    it("place-pki refuses a path that escapes the PKI directory", () => {
        const { params } = scratch();
        const result = run(renderStepScript("place-pki", params), renderPkiBundle([{ path: "../../etc/passwd", mode: "0644", content: "x" }]));
        expect(result.status).toBe(1);
        expect(result.stderr).toContain("refusing path '../../etc/passwd'");
    });

    it('cluster-init refuses when a peer neither answers nor refuses on 6443: a timeout is not "no cluster"', () => {
        const { dir, params } = scratch();
        // Stand-ins: curl times out (28) for 10.0.32.12 and is refused (7) elsewhere; kubeadm records its calls.
        const bin = join(dir, "bin");
        mkdirSync(bin);
        writeFileSync(join(bin, "curl"), '#!/bin/bash\ncase "$*" in *10.0.32.12*) exit 28 ;; *) exit 7 ;; esac\n', { mode: 0o755 });
        writeFileSync(join(bin, "kubeadm"), `#!/bin/bash\necho "$*" >>"${join(dir, "kubeadm.calls")}"\n`, { mode: 0o755 });
        mkdirSync(join(dir, "etc/kubeadm-ha/pki"), { recursive: true });
        const script = renderStepScript("cluster-init", {
            ...params,
            NODE_NAME: "cp-0",
            NODE_IP: "10.0.0.10",
            ENDPOINT_HOST: "api.example",
            API_SERVERS: "10.0.16.11 10.0.32.12",
        });
        const result = spawnSync("bash", ["-c", script], {
            input: "kind: InitConfiguration\n",
            encoding: "utf8",
            // Sleeping advances bash's clock, as in the lifecycle simulation: five minutes of polls take no time.
            env: { ...process.env, KUBEADM_HA_ROOT: root, PATH: `${bin}:${process.env.PATH}`, BASH_ENV: join(__dirname, "../tools/offline/hosts/bash-env.sh") },
        });
        expect(result.status).toBe(1);
        expect(result.stderr).toContain("10.0.32.12:6443 neither answered nor refused for 5 minutes; refusing to decide on a guess whether a cluster exists");
        expect(existsSync(join(dir, "kubeadm.calls"))).toBe(false);
    });

    it("shows a failed command's log with tokens and keys redacted", () => {
        const { params } = scratch();
        const script =
            renderStepScript("wait-for-prepare", params).replace(/^status=0[\s\S]*$/m, "") +
            "run_logged demo sh -c \"echo joining with abcdef.0123456789abcdef; printf -- '-----BEGIN EC PRIVATE KEY-----\\nsecret\\n-----END EC PRIVATE KEY-----\\n'; exit 3\"\n";
        const result = run(script, "");
        expect(result.status).toBe(1);
        expect(result.stderr).toContain("joining with <redacted-token>");
        expect(result.stderr).not.toMatch(/abcdef\.0123456789abcdef|secret|PRIVATE KEY/);
    });
});

describe("etcd membership rules (plan_removals), run by bash", () => {
    const rules = readFileSync(join(__dirname, "..", "scripts", "remote", "members.sh"), "utf8");
    /** Members as "id name learner healthy"; returns what plan_removals prints. */
    const decide = (planned: string, mode: "down" | "surplus", members: string[]) => {
        const result = spawnSync("bash", ["-c", `${rules}\nplan_removals "$1" "$2"`, "rules", planned, mode], {
            input: members.join("\n") + "\n",
            encoding: "utf8",
        });
        expect(result.stderr).toBe("");
        return result.stdout.trim().split("\n").filter(Boolean);
    };
    const planned = "a b c";

    it.each([
        ["nothing to do when the members are the planned ones", "surplus", ["1 a false true", "2 b false true", "3 c false true"], []],
        ["before a join, removes an unplanned member that is down", "down", ["1 a false true", "2 b false true", "9 old false false"], ["remove 9 old"]],
        [
            "before a join, leaves an unplanned healthy member (it goes once the new one has joined)",
            "down",
            ["1 a false true", "2 b false true", "9 old false true"],
            [],
        ],
        [
            "after a join, removes one healthy unplanned member per surplus member, never a planned one",
            "surplus",
            ["1 a false true", "7 x false true", "8 y false true", "9 z false true"],
            ["remove 7 x"],
        ],
        [
            "scaling down 5 to 3 removes both surplus members, one at a time",
            "surplus",
            ["1 a false true", "2 b false true", "3 c false true", "4 d false true", "5 e false true"],
            ["remove 4 d", "remove 5 e"],
        ],
        [
            "a member that never started (no name) and is not planned is removed first",
            "down",
            ["1 a false true", "2 b false true", "6 - true false"],
            ["remove 6 -"],
        ],
        ["a planned member that is down is never removed", "surplus", ["1 a false true", "2 b false true", "3 c false false"], []],
        [
            "refuses when etcd has no quorum",
            "down",
            ["1 a false true", "2 b false false", "9 old false false"],
            ["refuse etcd has no quorum: 1 of 3 voting members are healthy; restore it from a snapshot (README: disaster recovery)"],
        ],
        [
            "refuses a removal that would leave no healthy majority",
            "surplus",
            ["1 a false true", "2 b false false", "3 c false false", "8 y false true", "9 z false true"],
            ["refuse removing y would leave 2 of 4 voting members healthy, no majority"],
        ],
    ])("%s", (_what, mode, members, expected) => {
        expect(decide(planned, mode as "down" | "surplus", members)).toEqual(expected);
    });
});

describe("containerd's sandbox image, set from the real kubeadm of the default release", () => {
    // The sandbox lines of `containerd config default`: containerd 1.7 (Ubuntu 24.04's package,
    // config version 2) and containerd 2.x (config version 3, as containerd's CRI docs show it).
    const CONTAINERD_1 = `version = 2\n[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n    restrict_oom_score_adj = false\n    sandbox_image = "registry.k8s.io/pause:3.8"\n    selinux_category_range = 1024\n`;
    const CONTAINERD_2 = `version = 3\n[plugins]\n  [plugins.'io.containerd.cri.v1.images']\n    [plugins.'io.containerd.cri.v1.images'.pinned_images]\n      sandbox = 'registry.k8s.io/pause:3.10'\n`;
    const setPause = (config: string) => {
        const dir = tempDir("pause");
        mkdirSync(join(dir, "bin"));
        symlinkSync(binary("kubeadm"), join(dir, "bin/kubeadm"));
        const file = writeTemp(dir, "config.toml", config);
        const script = `${readFileSync(join(__dirname, "../scripts/containerd-pause.sh"), "utf8")}\ncontainerd_pause_image ${shellQuote(file)}`;
        const result = spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH}` } });
        return { status: result.status, said: result.stdout.trim(), stderr: result.stderr, config: readFileSync(file, "utf8") };
    };
    const pauseOfKubeadm = () => {
        const listed = spawnSync(binary("kubeadm"), ["config", "images", "list", "--kubernetes-version", `v${CURRENT.kubernetes}`], { encoding: "utf8" });
        return listed.stdout.split("\n").find((line) => line.includes("/pause:"))!;
    };

    it.each([
        ["containerd 1.x", CONTAINERD_1, (image: string) => `    sandbox_image = "${image}"\n`],
        ["containerd 2.x", CONTAINERD_2, (image: string) => `      sandbox = '${image}'\n`],
    ])("%s: points the sandbox image at kubeadm's pause image, once", (_label, config, line) => {
        const image = pauseOfKubeadm();
        expect(image).toMatch(/^registry\.k8s\.io\/pause:\d+\.\d+/);
        const first = setPause(config);
        expect([first.status, first.said]).toEqual([0, "changed"]);
        expect(first.config).toContain(line(image));
        expect(first.config.split("\n").length).toBe(config.split("\n").length);
        const again = setPause(first.config);
        expect([again.status, again.said, again.config]).toEqual([0, "unchanged", first.config]);
    });

    it("fails, naming the file, when the configuration has no sandbox setting", () => {
        const result = setPause("version = 2\n");
        expect(result.status).not.toBe(0);
        expect(result.stderr).toContain("has no sandbox image setting");
    });

    it("node preparation and the upgrade step both set it", () => {
        expect(renderUserData({ minor: "1.37", patch: "1.37.2" })).toMatch(
            /containerd_pause_image\(\) \{[\s\S]*pause=\$\(containerd_pause_image \/etc\/containerd\/config\.toml\)/,
        );
        expect(renderStepScript("kubeadm-control-plane", {})).toMatch(
            /containerd_pause_image\(\) \{[\s\S]*pause=\$\(containerd_pause_image "\$ROOT\/etc\/containerd\/config\.toml"\)/,
        );
    });
});
