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
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { KubeadmDocument, renderControlPlaneStdin, renderDocuments } from "../core/kubeadm";
import { PkiFile, renderPkiBundle } from "../core/pki";
import { shellcheck, tempDir } from "./tools";

const STEPS: [RemoteStep, Record<string, string>][] = [
    ["wait-for-prepare", {}],
    ["place-pki", {}],
    [
        "kubeadm-control-plane",
        {
            NODE_NAME: "ip-10-0-0-10.ec2.internal",
            NODE_IP: "10.0.0.10",
            ENDPOINT_HOST: "api.example",
            FIRST_NODE: "true",
            API_SERVERS: "10.0.16.11 10.0.32.12",
        },
    ],
    ["reset-node", { NODE_NAME: "n1" }],
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
        expect(shellcheck(renderUserData({ minor: "1.34" }))).toBe("");
        expect(shellcheck(renderUserData({ minor: "1.34", patch: "1.34.2" }))).toBe("");
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
        const script = renderStepScript("reset-node", { NODE_NAME: "a'; rm -rf / #" });
        expect(script).toContain(`NODE_NAME=${shellQuote("a'; rm -rf / #")}`);
        expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    });

    it("rejects parameter names that are not shell variables", () => {
        expect(() => renderStepScript("reset-node", { "NODE NAME": "x" })).toThrow(/bad script parameter name/);
    });
});

describe("the shellcheck harness", () => {
    it("reports a real finding, so a clean result means something", () => {
        expect(shellcheck("#!/bin/bash\nrm -rf $1/tmp\n")).toMatch(/SC2086/);
    });
});

describe("remote steps, run for real in a scratch directory", () => {
    const run = (script: string, stdin: string) => spawnSync("bash", ["-c", script], { input: stdin, encoding: "utf8" });
    const scratch = () => {
        const dir = tempDir("step");
        const owner = `${process.getuid!()}:${process.getgid!()}`;
        return { dir, params: { PKI_DIR: join(dir, "pki"), STAGED_PKI_DIR: join(dir, "staged"), PKI_OWNER: owner, LOG_DIR: join(dir, "log") } };
    };

    it("place-pki writes every file of its stdin bundle with its mode, staged and placed", () => {
        const { dir, params } = scratch();
        const files: PkiFile[] = [
            { path: "ca.crt", mode: "0644", content: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" },
            { path: "etcd/ca.key", mode: "0600", content: "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n" },
        ];
        const result = run(renderStepScript("place-pki", params), renderPkiBundle(files));
        expect([result.status, result.stdout.trim()]).toEqual([0, `[kubeadm-ha] placed 2 certificate and key files in ${join(dir, "pki")}`]);
        for (const f of files) {
            for (const root of ["pki", "staged"]) {
                expect(readFileSync(join(dir, root, f.path), "utf8")).toBe(f.content);
                expect((statSync(join(dir, root, f.path)).mode & 0o777).toString(8).padStart(4, "0")).toBe(f.mode);
            }
        }
    });

    it("place-pki refuses a path that escapes the PKI directory", () => {
        const { params } = scratch();
        const result = run(renderStepScript("place-pki", params), renderPkiBundle([{ path: "../../etc/passwd", mode: "0644", content: "x" }]));
        expect(result.status).toBe(1);
        expect(result.stderr).toContain("refusing path '../../etc/passwd'");
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

describe("the control-plane step's stdin", () => {
    it("splits into init and join documents exactly as the node's awk program does", () => {
        const joinDocs = [{ apiVersion: "kubeadm.k8s.io/v1beta4", kind: "JoinConfiguration", discovery: {} }] as unknown as KubeadmDocument[];
        const init = [
            { apiVersion: "kubeadm.k8s.io/v1beta4", kind: "InitConfiguration" },
            { apiVersion: "kubeadm.k8s.io/v1beta4", kind: "ClusterConfiguration" },
        ] as unknown as KubeadmDocument[];
        const script = readFileSync(join(__dirname, "..", "scripts", "remote", "kubeadm-control-plane.sh"), "utf8");
        const awk = /awk -v init="\$init_config" -v join="\$join_config" '([\s\S]*?)' "\$documents"/.exec(script)![1];
        const dir = tempDir("split");
        const split = (stdin: string) => {
            const result = spawnSync("awk", ["-v", `init=${dir}/init.yaml`, "-v", `join=${dir}/join.yaml`, awk], { input: stdin, encoding: "utf8" });
            expect(result.status).toBe(0);
            const read = (f: string) => (existsSync(f) ? readFileSync(f, "utf8") : "");
            const out = { init: read(`${dir}/init.yaml`), join: read(`${dir}/join.yaml`) };
            rmSync(`${dir}/init.yaml`, { force: true });
            rmSync(`${dir}/join.yaml`, { force: true });
            return out;
        };
        expect(split(renderControlPlaneStdin(joinDocs, init))).toEqual({ init: renderDocuments(init), join: renderDocuments(joinDocs) });
        expect(split(renderControlPlaneStdin(joinDocs))).toEqual({ init: "", join: renderDocuments(joinDocs) });
    });
});
