import { etcdFlags, renderEtcdUnit } from "../core/etcd";
import { renderEtcdUserData, renderRemoteCommand, renderStepScript, renderUserData, RemoteStep, shellQuote } from "../core/scripts";
import { shellcheck } from "./tools";

const STEPS: [RemoteStep, Record<string, string>][] = [
    ["wait-for-prepare", {}],
    ["place-pki", {}],
    ["kubeadm-init", { NODE_NAME: "ip-10-0-0-10.ec2.internal", NODE_IP: "10.0.0.10", ENDPOINT_HOST: "api.example" }],
    ["kubeadm-join", { NODE_NAME: "n1", NODE_IP: "10.0.16.10", ENDPOINT_HOST: "api.example", API_SERVERS: "10.0.0.10" }],
    ["refresh-token", {}],
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
