/**
 * The offline render of every example stack, judged by the real consumers of each artifact:
 * shellcheck for scripts, the strict kubeadm v1beta4 schema for kubeadm documents, kubectl for the
 * kubeconfig, openssl for certificate chains, SANs and usages.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import { etcdFlags, renderEtcdUnit } from "../core/etcd";
import { render, RenderResult } from "../tools/render";
import { runProgram } from "./harness";
import { openssl, requireTool, shellcheck, tempDir } from "./tools";
import { validateDocument } from "./schemas/kubeadm-v1beta4";
import { zonesOf } from "../tools/offline/engine";
import { readStackConfig } from "../tools/render";

function walk(dir: string): string[] {
    return readdirSync(dir).flatMap((entry) => {
        const path = join(dir, entry);
        return statSync(path).isDirectory() ? walk(path) : [path];
    });
}

const ext = (file: string, usage: string) => openssl(["x509", "-noout", "-ext", usage], readFileSync(file, "utf8"));

describe.each(["dev", "external"])("the render of stack %s", (stack) => {
    let result: RenderResult;
    let files: string[];
    beforeAll(async () => {
        const { config, region } = readStackConfig(stack);
        const run = await runProgram(config, { regionZones: zonesOf(region) });
        result = await render(stack, tempDir(`render-${stack}`), run);
        files = walk(result.outDir).map((f) => relative(result.outDir, f));
    });

    it("writes user data and ordered steps for every node, and a summary", () => {
        const nodes = [...new Set(files.filter((f) => f.endsWith("/user-data.sh")).map((f) => f.split("/")[0]))];
        expect(nodes.length).toBe(stack === "external" ? 6 : 3);
        for (const node of nodes) expect(files.filter((f) => f.startsWith(`${node}/steps/01-`))).toEqual([`${node}/steps/01-${node}-prepared.sh`]);
        expect(result.summary).toContain(`topology: ${stack === "external" ? "external" : "stacked"} etcd`);
        // prepared, pki, cluster-init, one member step per node in turn, membership, API gate; external
        // etcd: prepared, pki, the three member starts in turn, health gate, then the same.
        expect(result.summary).toContain(`bootstrap order (stage, step): ${stack === "external" ? 12 : 8} stages on the critical path`);
    });

    it("passes shellcheck on every script", () => {
        const scripts = files.filter((f) => f.endsWith(".sh"));
        expect(scripts.length).toBeGreaterThan(10);
        for (const script of scripts) {
            const text = readFileSync(join(result.outDir, script), "utf8");
            expect([script, shellcheck(text.startsWith("#!") ? text : `#!/bin/bash\n${text}`)]).toEqual([script, ""]);
        }
    });

    it("hands kubeadm only documents that pass the strict v1beta4 schema", () => {
        const documents = files.filter((f) => f.endsWith(".kubeadm.yaml"));
        // cluster-init's init documents and each node's join document.
        expect(documents.length).toBe(4);
        for (const file of documents) {
            const docs = parseAllDocuments(readFileSync(join(result.outDir, file), "utf8")).map((d) => d.toJS());
            expect([file, docs.flatMap(validateDocument)]).toEqual([file, []]);
        }
    });

    it("gives a kubeconfig kubectl reads", () => {
        requireTool("kubectl", "kubernetes-client");
        const view = execFileSync(
            "kubectl",
            ["config", "view", "--kubeconfig", join(result.outDir, "kubeconfig"), "-o", "jsonpath={.clusters[0].cluster.server}"],
            { encoding: "utf8" },
        );
        expect(view).toMatch(/^https:\/\/.+\.elb\.us-east-1\.amazonaws\.com:6443$/);
    });

    it("places certificates that verify against their CA with the right SANs and usages", () => {
        for (const node of new Set(files.filter((f) => f.includes("/pki/")).map((f) => f.split("/")[0]))) {
            const pki = (name: string) => join(result.outDir, node, "pki", name);
            const leaves = node.includes("-etcd-")
                ? ["server.crt", "peer.crt", "healthcheck-client.crt"]
                : ["apiserver.crt", ...(stack === "external" ? ["apiserver-etcd-client.crt"] : [])];
            for (const leaf of leaves) {
                const ca = leaf === "apiserver-etcd-client.crt" ? pki("etcd/ca.crt") : pki("ca.crt");
                expect(openssl(["verify", "-CAfile", ca, pki(leaf)]).trim()).toBe(`${pki(leaf)}: OK`);
            }
            if (node.includes("-etcd-")) {
                for (const leaf of ["server.crt", "peer.crt"]) {
                    expect(ext(pki(leaf), "extendedKeyUsage")).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
                    expect(ext(pki(leaf), "subjectAltName")).toMatch(/DNS:localhost.*IP Address:10\.0\.\d+\.11\d, IP Address:127\.0\.0\.1/s);
                }
            } else {
                expect(ext(pki("apiserver.crt"), "subjectAltName")).toMatch(/DNS:kubernetes\.default\.svc\.cluster\.local/);
            }
        }
    });

    it("installs on each etcd member the unit rendered from that member's flags", () => {
        const units = files.filter((f) => f.endsWith("etcd.service"));
        expect(units.length).toBe(stack === "external" ? 3 : 0);
        for (const unit of units) {
            const node = unit.split("/")[0];
            const ip = /--listen-peer-urls=https:\/\/([\d.]+):2380/.exec(readFileSync(join(result.outDir, unit), "utf8"))![1];
            expect(readFileSync(join(result.outDir, unit), "utf8")).toBe(renderEtcdUnit(etcdFlags({ name: node, ip }, "kubeadm-ha-ext-etcd")));
        }
    });
});

describe("the render command", () => {
    it("fails on bad config with the message pulumi preview prints, and writes nothing", () => {
        const dir = tempDir("render-bad");
        const stackFile = join(dir, "Pulumi.bad.yaml");
        writeFileSync(stackFile, "config:\n  kubeadm-ha:controlPlaneCount: 4\n");
        const out = join(dir, "out");
        const result = spawnSync("npm", ["run", "--silent", "render", "--", "--stack", stackFile, "--out", out], {
            encoding: "utf8",
            cwd: join(__dirname, ".."),
        });
        expect(result.status).toBe(1);
        expect(result.stderr).toContain(
            "error: invalid stack configuration:\n  - kubeadm-ha:controlPlaneCount = 4: stacked etcd runs one member per control-plane node and needs an odd count for a majority; allowed: 1, 3, 5, 7",
        );
        expect(() => readdirSync(out)).toThrow();
    });
});
