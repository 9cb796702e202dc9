/**
 * Real kubeadm judges every kubeadm document the program sends to a node: `kubeadm config validate`
 * of the release the documents are for (built from its Go module by lab/build), on every example
 * stack and on the configurations the other tests build. kubeadm decodes strictly, so a misspelt or
 * misplaced field, a bad token or CA hash, or a value out of range fails here as it would on a node.
 * Run in a network namespace of its own: a document naming a label instead of a release must not
 * reach dl.k8s.io from a test.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { NODE_CONFIGURATION_MARK } from "../core/kubeadm";
import { binary, CURRENT, LAB_RELEASES, LabRelease, PREVIOUS_MINOR } from "../lab/releases";
import { zonesOf } from "../tools/offline/engine";
import { readStackConfig } from "../tools/render";
import { ProgramRun, runProgram } from "./harness";
import { requireTool, tempDir, writeTemp } from "./tools";

/** Each kubeadm configuration (an init or a join, then the node configuration) among the program's remote commands. */
function kubeadmConfigurations(run: ProgramRun): [string, string][] {
    const configurations: [string, string][] = [];
    for (const command of run.ofType("command:remote:Command")) {
        const stdin = command.inputs.stdin;
        if (typeof stdin !== "string" || !/^apiVersion: kubeadm\.k8s\.io\//m.test(stdin)) continue;
        const [first, node] = stdin.split(`${NODE_CONFIGURATION_MARK}\n`);
        configurations.push([command.name, first.replace(/---\n$/, "")]);
        if (node !== undefined) configurations.push([`${command.name} (node configuration)`, node]);
    }
    return configurations;
}

/** kubeadm's findings on one configuration, or "" when it accepts it. */
function validate(release: LabRelease, name: string, documents: string): string {
    requireTool("unshare", "util-linux");
    const file = writeTemp(tempDir("kubeadm-validate"), `${name.replace(/[^a-z0-9-]/gi, "_")}.yaml`, documents);
    const result = spawnSync("unshare", ["--net", binary("kubeadm", release), "config", "validate", "--config", file], { encoding: "utf8" });
    return result.status === 0 ? "" : `${result.stdout}${result.stderr}`;
}

const ZONES = zonesOf("us-east-1");

const CASES: [string, () => Promise<ProgramRun>, LabRelease][] = [
    ["the dev stack", () => runProgram(readStackConfig("dev").config, { regionZones: zonesOf(readStackConfig("dev").region) }), CURRENT],
    ["the external stack", () => runProgram(readStackConfig("external").config, { regionZones: zonesOf(readStackConfig("external").region) }), CURRENT],
    ["5 stacked nodes", () => runProgram({ controlPlaneCount: 5 }, { regionZones: ZONES }), CURRENT],
    [
        "external etcd, 5 members, 2 control-plane nodes",
        () => runProgram({ etcdTopology: "external", etcdCount: 5, controlPlaneCount: 2 }, { regionZones: ZONES }),
        CURRENT,
    ],
    ["monitoring on", () => runProgram({ monitoring: true }, { regionZones: ZONES }), CURRENT],
    [
        "a restore",
        () => runProgram({ etcdRestoreFrom: "s3://my-org-etcd-backups/kubeadm-ha/etcd/20261201T000000Z-ip-10-0-0-10.ec2.internal.db" }, { regionZones: ZONES }),
        CURRENT,
    ],
    ["the previous minor, before its upgrade", () => runProgram({ kubernetesVersion: PREVIOUS_MINOR.kubernetes }, { regionZones: ZONES }), PREVIOUS_MINOR],
    ["a bare minor", () => runProgram({ kubernetesVersion: CURRENT.kubernetes.split(".").slice(0, 2).join(".") }, { regionZones: ZONES }), CURRENT],
];

describe("real kubeadm accepts every kubeadm document the program renders", () => {
    it.each(CASES)("%s", async (_label, run, release) => {
        const configurations = kubeadmConfigurations(await run());
        // An init, and a join with its node configuration per joining node at the least.
        expect(configurations.length).toBeGreaterThanOrEqual(3);
        for (const [name, documents] of configurations) {
            expect(parseAllDocuments(documents).every((d) => d.errors.length === 0)).toBe(true);
            expect([name, validate(release, name, documents)]).toEqual([name, ""]);
        }
    });

    it.each(LAB_RELEASES)("the lab's etcd pin for $kubernetes is the one its kubeadm runs", (release) => {
        const listed = spawnSync(
            "unshare",
            ["--net", binary("kubeadm", release), "config", "images", "list", "--kubernetes-version", `v${release.kubernetes}`],
            {
                encoding: "utf8",
            },
        );
        expect(listed.stdout).toContain(`registry.k8s.io/etcd:${release.etcd}-0\n`);
    });

    it.each(LAB_RELEASES.filter((r) => r.hosts))("the lab's etcd build for $kubernetes's hosts is that release", (release) => {
        const etcd = spawnSync(binary("etcd", release), ["--version"], { encoding: "utf8" });
        expect(etcd.stdout).toContain(`etcd Version: ${release.etcd}\n`);
    });

    it.each([CURRENT, PREVIOUS_MINOR])("the simulation's hosts list the pause and etcd images kubeadm $kubernetes lists", (release) => {
        const listed = spawnSync(
            "unshare",
            ["--net", binary("kubeadm", release), "config", "images", "list", "--kubernetes-version", `v${release.kubernetes}`],
            {
                encoding: "utf8",
            },
        ).stdout;
        const minor = release.kubernetes.split(".").slice(0, 2).join(".");
        const model = (
            JSON.parse(readFileSync(join(__dirname, "../tools/offline/hosts/kubeadm-images.json"), "utf8")) as Record<string, { pause: string; etcd: string }>
        )[minor];
        expect(listed).toContain(`registry.k8s.io/pause:${model.pause}\n`);
        expect(listed).toContain(`registry.k8s.io/etcd:${model.etcd}\n`);
    });

    it("and rejects a misspelt field, so its acceptance means something", () => {
        const findings = validate(
            CURRENT,
            "misspelt",
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncontrolPlaneEndpiont: api.example:6443\n",
        );
        expect(findings).toMatch(/unknown field "controlPlaneEndpiont"/);
    });
});
