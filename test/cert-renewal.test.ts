/**
 * The certificate-renewal backstop: the program and its install step pass shellcheck as rendered, the
 * units pass `systemd-analyze verify`, the nodes' timers fire hours apart, and the program, run under
 * bash against stand-ins for kubeadm, crictl, curl, kubectl and systemctl on a host tree of its own,
 * renews only when due, gates before and after, and restarts the static pods one at a time. The
 * stand-ins answer from files and change state at once, so no poll ever waits.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { METRICS_DIR, renderEnvironmentFile } from "../core/backup";
import {
    renewalRequest,
    certificateExpiry,
    certificateReport,
    CERT_EXPIRY_ALERT_DAYS,
    CERT_RENEWAL_BACKSTOP_DAYS,
    CERT_RENEWAL_PROGRAM_PATH,
    CERT_RENEWAL_SERVICE,
    certRenewalEnvironment,
    certRenewalSlot,
    parseCertificateExpiry,
    renderCertRenewalInstall,
    renderCertRenewalProgram,
    renderCertRenewalTimer,
} from "../core/cert-renewal";
import { APISERVER_ETCD_CLIENT_SPEC, CA_SPECS, ETCD_HEALTHCHECK_CLIENT_SPEC, etcdMemberCertSpec } from "../core/pki";
import { renderStepScript } from "../core/scripts";
import { issueFromSpec, IssuedPem } from "../tools/offline/tls";
import { requireTool, shellcheck, tempDir, writeTemp } from "./tools";

const COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"];
const DAY = 86_400;
const HELD = "var/lib/kubeadm-ha/held-manifests";
const MANIFESTS = "etc/kubernetes/manifests";
const PROM_FILE = join(METRICS_DIR, "kubeadm_ha_certificates.prom");

/** Shared by the stand-ins: each call is recorded with the manifests present at that moment. */
const STANDIN_LIB = String.raw`
record() {
  local present="" sep="" m
  for m in ${COMPONENTS.join(" ")}; do
    if [ -e "$KUBEADM_HA_ROOT/${MANIFESTS}/$m.yaml" ]; then present="$present$sep$m"; sep=","; fi
  done
  printf '%s | %s\n' "$*" "$present" >>"$STANDIN_STATE/calls.log"
}
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
`;

/** Small bash stand-ins; what they answer is set by files in $STANDIN_STATE. */
const STANDINS: Record<string, string> = {
    kubeadm: String.raw`
record kubeadm "$@"
case "$*" in
  "certs check-expiration -o json")
    [ ! -e "$STANDIN_STATE/check-fails" ] || { echo "error: the certificate directory is unreadable" >&2; exit 1; }
    expiry=$(cat "$STANDIN_STATE/expiry")
    # What kubeadm prints: a line about its configuration, then output.kubeadm.k8s.io/v1alpha3
    # CertificateExpirationInfo. An externally managed certificate expires first (kubeadm does not
    # renew it, so it must not count), super-admin.conf is missing on a joined node (null date).
    echo "[check-expiration] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"..."
    cat <<EOF
{"kind":"CertificateExpirationInfo","apiVersion":"output.kubeadm.k8s.io/v1alpha3","certificates":[
{"name":"admin.conf","expirationDate":"$(iso $((expiry + 3600)))","residualTime":1,"caName":"ca","externallyManaged":false,"missing":false},
{"name":"apiserver","expirationDate":"$(iso "$expiry")","residualTime":1,"caName":"ca","externallyManaged":false,"missing":false},
{"name":"front-proxy-client","expirationDate":"$(iso $((expiry - 5 * 86400)))","residualTime":1,"caName":"front-proxy-ca","externallyManaged":true,"missing":false},
{"name":"super-admin.conf","expirationDate":null,"residualTime":0,"externallyManaged":false,"missing":true}
],"certificateAuthorities":[{"name":"ca","expirationDate":"$(iso $((expiry + 3000 * 86400)))","residualTime":1,"externallyManaged":false,"missing":false}]}
EOF
    ;;
  "certs renew all")
    echo $(($(date +%s) + 365 * 86400)) >"$STANDIN_STATE/expiry"
    echo "Done renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates."
    ;;
  "kubeconfig user "*)
    printf 'apiVersion: v1\nclusters:\n- cluster:\n    server: https://cp.example:6443\n  name: kubernetes\n'
    ;;
  *) echo "kubeadm stand-in: unexpected $*" >&2; exit 2 ;;
esac
`,
    crictl: String.raw`
# crictl --runtime-endpoint <socket> ps --name ^<name>$ --state running -q: a container runs exactly
# while its manifest is in the kubelet's directory.
name=$(printf '%s' "$5" | tr -d '^$')
if [ -e "$KUBEADM_HA_ROOT/${MANIFESTS}/$name.yaml" ]; then state=running; else state=none; fi
record crictl ps "$name" "$state"
[ "$state" = none ] || echo "container-$name"
`,
    curl: String.raw`
for url; do :; done
record curl "$url"
[ -e "$KUBEADM_HA_ROOT/${MANIFESTS}/kube-apiserver.yaml" ]
`,
    kubectl: String.raw`
args=" $* "
case "$args" in
  *" get nodes "*)
    record kubectl get nodes
    printf 'cp-0 True\ncp-1 %s\ncp-2 True\n' "$(cat "$STANDIN_STATE/cp-1-ready" 2>/dev/null || echo True)"
    ;;
  *" get pods -l tier=control-plane "*)
    record kubectl get control-plane pods
    for node in cp-0 cp-1 cp-2; do
      for c in ${COMPONENTS.join(" ")}; do echo "$c-$node True"; done
    done
    ;;
  *" get pods -l component=etcd "*)
    record kubectl get etcd pods
    printf 'pod/etcd-cp-0\npod/etcd-cp-1\npod/etcd-cp-2\n'
    ;;
  *" member list "*)
    # etcdctl 3.7's -w fields, the form the scripts read (test/etcdctl.test.ts compares it with the real one).
    record etcdctl member list
    printf '"ClusterID" : 2734594039658407857\n"MemberID" : 160\n"RaftTerm" : 2\n'
    for i in 0 1 2; do
      printf '"ID" : %d\n"Name" : "cp-%d"\n"PeerURL" : "https://10.0.%d.10:2380"\n"ClientURL" : "https://10.0.%d.10:2379"\n"IsLearner" : false\n\n' "$((160 + i))" "$i" "$i" "$i"
    done
    ;;
  *" endpoint health "*)
    record etcdctl endpoint health
    for i in 0 1 2; do
      if [ "$(cat "$STANDIN_STATE/etcd-down" 2>/dev/null)" = "cp-$i" ]; then
        printf '"Endpoint" : "https://10.0.%d.10:2379"\n"Health" : false\n"Took" : 5.000311s\n"Error" : context deadline exceeded\n\n' "$i"
      else
        printf '"Endpoint" : "https://10.0.%d.10:2379"\n"Health" : true\n"Took" : 2.459308ms\n"Error" : \n\n' "$i"
      fi
    done
    ;;
  *" endpoint status "*)
    record etcdctl endpoint status
    printf '"ClusterID" : 2734594039658407857\n"MemberID" : 160\n"Revision" : 9\n"RaftTerm" : 2\n"Version" : "3.7.0"\n"Leader" : 160\n"IsLearner" : false\n"Endpoint" : "https://127.0.0.1:2379"\n\n'
    ;;
  *) echo "kubectl stand-in: unexpected $*" >&2; exit 2 ;;
esac
`,
    systemctl: String.raw`
record systemctl "$@"
`,
};

interface Host {
    dir: string;
    root: string;
    state: string;
    env: Record<string, string | undefined>;
}

/** A control-plane node's file tree, stand-ins first on its PATH, certificates expiring in `days`. */
function host(name: string, days: number, stacked = true): Host {
    const dir = tempDir(`cert-renewal-${name}`);
    const root = join(dir, "host");
    const state = join(dir, "state");
    const bin = join(dir, "bin");
    for (const d of [state, bin, join(root, MANIFESTS), join(root, "etc/kubernetes/pki"), join(root, "etc/kubeadm-ha")]) mkdirSync(d, { recursive: true });
    for (const c of COMPONENTS) if (stacked || c !== "etcd") writeFileSync(join(root, MANIFESTS, `${c}.yaml`), `kind: Pod\nmetadata:\n  name: ${c}\n`);
    writeFileSync(join(root, "etc/kubernetes/kubelet.conf"), "kind: Config\n");
    writeFileSync(join(root, "etc/kubernetes/pki/ca.crt"), "not read by the stand-ins\n");
    writeFileSync(join(root, "etc/kubeadm-ha/cert-renewal.env"), renderEnvironmentFile(certRenewalEnvironment(stacked)) + "\n");
    writeFileSync(join(state, "expiry"), `${Math.floor(Date.now() / 1000) + days * DAY}\n`);
    writeFileSync(join(state, "lib.sh"), STANDIN_LIB);
    for (const [tool, text] of Object.entries(STANDINS)) {
        writeFileSync(join(bin, tool), `#!/usr/bin/env bash\nset -euo pipefail\n. "$STANDIN_STATE/lib.sh"\n${text}`);
        chmodSync(join(bin, tool), 0o755);
    }
    writeFileSync(join(state, "calls.log"), "");
    const program = writeTemp(dir, "kubeadm-ha-renew-certificates", renderCertRenewalProgram());
    chmodSync(program, 0o755);
    return { dir, root, state, env: { PATH: `${bin}:${process.env.PATH}`, KUBEADM_HA_ROOT: root, STANDIN_STATE: state, HOME: dir } };
}

function renew(h: Host, mode?: string) {
    const result = spawnSync("bash", [join(h.dir, "kubeadm-ha-renew-certificates"), ...(mode ? [mode] : [])], { env: h.env, encoding: "utf8" });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface Call {
    call: string;
    present: string[];
}

function calls(h: Host): Call[] {
    return readFileSync(join(h.state, "calls.log"), "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => {
            const [call, present] = l.split(" | ");
            return { call, present: present === "" ? [] : present.split(",") };
        });
}

const expiryOf = (h: Host) => new Date(Number(readFileSync(join(h.state, "expiry"), "utf8")) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
const firstIndex = (log: Call[], match: (c: Call) => boolean) => log.findIndex(match);

/** systemd-analyze's findings, less the complaint that the program is not on this machine. */
function verify(files: Record<string, string>): string[] {
    requireTool("systemd-analyze", "systemd");
    const dir = tempDir("cert-renewal-units");
    const paths = Object.entries(files).map(([name, content]) => writeTemp(dir, name, content));
    const result = spawnSync("systemd-analyze", ["verify", "--man=no", ...paths], { encoding: "utf8" });
    return (result.stdout + result.stderr)
        .split("\n")
        .filter((line) => line.trim() !== "" && !/Command \/usr\/local\/s?bin\/\S+ is not executable: No such file or directory/.test(line));
}

/** The minute of the day (UTC) a timer fires, as systemd normalizes its OnCalendar. */
function firingMinute(timer: string): number {
    const spec = /^OnCalendar=(.+)$/m.exec(timer)![1];
    const result = spawnSync("systemd-analyze", ["calendar", spec], { encoding: "utf8", env: { ...process.env, TZ: "UTC" } });
    const normalized = /Normalized form: \*-\*-\* (\d{2}):(\d{2}):00 UTC/.exec(result.stdout);
    if (result.status !== 0 || !normalized) throw new Error(`systemd-analyze calendar rejects ${spec}: ${result.stdout}${result.stderr}`);
    return Number(normalized[1]) * 60 + Number(normalized[2]);
}

beforeAll(() => {
    for (const [tool, pkg] of [
        ["python3", "python3"],
        ["flock", "util-linux"],
        ["promtool", "prometheus"],
        ["openssl", "openssl"],
    ]) {
        requireTool(tool, pkg);
    }
});

describe("the certificate renewal program and its install step", () => {
    it("pass shellcheck as rendered, and so does the member step that includes the certificate functions", () => {
        expect(shellcheck(renderCertRenewalProgram())).toBe("");
        for (const stacked of [true, false]) {
            const command = renderCertRenewalInstall({ nodeIndex: 1, nodeCount: 3, stacked });
            expect(shellcheck(`#!/bin/bash\n${command}`)).toBe("");
        }
        expect(shellcheck(renderStepScript("cert-renewal-install", { RENEWAL_PROGRAM: "x", RENEWAL_ENV: "x", RENEWAL_SERVICE: "x", RENEWAL_TIMER: "x" }))).toBe(
            "",
        );
    });

    it("export the expiry where the node exporter's textfile collector reads, with windows that nest", () => {
        expect(readFileSync(join(__dirname, "..", "scripts", "remote", "certificates.sh"), "utf8")).toContain(`CERT_METRICS_DIR=$ROOT${METRICS_DIR}\n`);
        // The alert fires only after both renewals missed: pulumi up's window (60 days), then the timer's.
        expect(CERT_EXPIRY_ALERT_DAYS).toBeLessThan(CERT_RENEWAL_BACKSTOP_DAYS);
        expect(CERT_RENEWAL_BACKSTOP_DAYS).toBeLessThan(60);
        expect(readFileSync(join(__dirname, "..", "monitoring", "control-plane.rules.yaml"), "utf8")).toContain(
            `(kubeadm_ha_certificate_expiry_timestamp_seconds) - time() < ${CERT_EXPIRY_ALERT_DAYS} * 24 * 3600`,
        );
        expect(certRenewalEnvironment(true)).toEqual({ RENEW_WINDOW_DAYS: String(CERT_RENEWAL_BACKSTOP_DAYS), STACKED: "true" });
    });
});

describe("the renewal units", () => {
    it("the service and every node's timer pass systemd-analyze verify", () => {
        for (let i = 0; i < 7; i++) {
            expect([
                i,
                verify({ "kubeadm-ha-cert-renewal.service": CERT_RENEWAL_SERVICE, "kubeadm-ha-cert-renewal.timer": renderCertRenewalTimer(i, 7) }),
            ]).toEqual([i, []]);
        }
        expect(CERT_RENEWAL_SERVICE).toContain(`ExecStart=${CERT_RENEWAL_PROGRAM_PATH}\n`);
    });

    it.each([3, 5, 7])("the timers of %i nodes fire daily at distinct times, at least an hour apart", (count) => {
        const minutes = Array.from({ length: count }, (_, i) => firingMinute(renderCertRenewalTimer(i, count)));
        for (let a = 0; a < count; a++) {
            for (let b = a + 1; b < count; b++) {
                const apart = Math.abs(minutes[a] - minutes[b]);
                expect([a, b, Math.min(apart, 24 * 60 - apart) >= 60]).toEqual([a, b, true]);
            }
        }
        expect(renderCertRenewalTimer(0, count)).toMatch(/^Persistent=true$/m);
    });

    it("refuse a node index outside the cluster", () => {
        expect(() => certRenewalSlot(3, 3)).toThrow(/not in 0\.\.2/);
        expect(() => certRenewalSlot(0, 0)).toThrow(/positive/);
    });
});

describe("the renewal program against stand-ins", () => {
    it("does nothing but report when the earliest certificate is months away", () => {
        const h = host("not-due", 200);
        const result = renew(h);
        expect([result.status, result.stderr]).toEqual([0, ""]);
        const log = calls(h);
        expect(log.map((c) => c.call)).not.toContainEqual(expect.stringMatching(/certs renew|crictl|kubectl|etcdctl/));
        expect(log.every((c) => c.present.length === COMPONENTS.length)).toBe(true);
        // The earliest certificate kubeadm renews: not the externally managed one, not the missing one.
        expect(result.stdout).toMatch(/more than 30 days away; nothing to renew\n/);
        expect(parseCertificateExpiry(result.stdout)).toBe(expiryOf(h));
        expect(result.stdout.trimEnd().split("\n").pop()).toBe(`certificates-expire-at: ${expiryOf(h)}`);
        const metric = readFileSync(join(h.root, PROM_FILE), "utf8");
        expect(metric).toContain(`\nkubeadm_ha_certificate_expiry_timestamp_seconds{certificate="kubeadm"} ${Date.parse(expiryOf(h)) / 1000}\n`);
    });

    it("when due: checks, gates, renews, restarts each static pod alone, gates again and reports the new expiry", () => {
        const h = host("due", 10);
        const before = expiryOf(h);
        const result = renew(h);
        expect([result.status, result.stderr]).toEqual([0, ""]);
        const log = calls(h);
        const check = firstIndex(log, (c) => c.call === "kubeadm certs check-expiration -o json");
        const gate = firstIndex(log, (c) => c.call === "kubectl get nodes");
        const renewAll = firstIndex(log, (c) => c.call === "kubeadm certs renew all");
        expect(check).toBe(0);
        expect(check).toBeLessThan(gate);
        // The whole gate before the renewal: Nodes, control-plane pods, etcd members healthy.
        for (const what of ["curl", "kubectl get nodes", "kubectl get control-plane pods", "etcdctl member list", "etcdctl endpoint health"]) {
            const at = firstIndex(log, (c) => c.call.startsWith(what));
            expect([what, at >= 0 && at < renewAll]).toEqual([what, true]);
        }

        // Never two manifests out at once, at any call.
        expect(log.filter((c) => c.present.length < COMPONENTS.length - 1)).toEqual([]);
        // Per component, in order: out, seen gone, back, seen running; the next only after that.
        let cursor = renewAll;
        for (const component of COMPONENTS) {
            const gone = firstIndex(log, (c) => c.call === `crictl ps ${component} none`);
            const running = log.findIndex((c, i) => i > gone && c.call === `crictl ps ${component} running`);
            expect([component, gone > cursor, running > gone]).toEqual([component, true, true]);
            expect(log.slice(gone, running).every((c) => c.present.length === COMPONENTS.length - 1 && !c.present.includes(component))).toBe(true);
            expect(log[running].present).toHaveLength(COMPONENTS.length);
            cursor = running;
        }
        // The API server is back when it answers, not only when its container runs.
        const apiBack = firstIndex(log, (c) => c.call === "crictl ps kube-apiserver running");
        expect(log[apiBack + 1].call).toMatch(/^curl https:\/\/127\.0\.0\.1:6443\/readyz$/);
        // Gated again after the last restart.
        expect(log.slice(cursor).map((c) => c.call)).toEqual(
            expect.arrayContaining(["kubectl get nodes", "kubectl get control-plane pods", "etcdctl member list", "etcdctl endpoint health"]),
        );

        const after = expiryOf(h);
        expect(Date.parse(after)).toBeGreaterThan(Date.parse(before) + 300 * DAY * 1000);
        expect(result.stdout.trimEnd().split("\n").pop()).toBe(`certificates-expire-at: ${after}`);
        expect(readdirSync(join(h.root, MANIFESTS)).sort()).toEqual(COMPONENTS.map((c) => `${c}.yaml`));
        expect(readdirSync(join(h.root, HELD))).toEqual([]);
        // The metric: the new expiry, in a file promtool accepts, and no temporary file beside it.
        const dir = join(h.root, METRICS_DIR);
        expect(readdirSync(dir)).toEqual(["kubeadm_ha_certificates.prom"]);
        expect(statSync(join(dir, "kubeadm_ha_certificates.prom")).mode & 0o777).toBe(0o644);
        const metric = readFileSync(join(dir, "kubeadm_ha_certificates.prom"), "utf8");
        const lint = spawnSync("promtool", ["check", "metrics"], { input: metric, encoding: "utf8" });
        expect([lint.status, lint.stdout + lint.stderr]).toEqual([0, ""]);
        expect(metric).toContain(`\nkubeadm_ha_certificate_expiry_timestamp_seconds{certificate="kubeadm"} ${Date.parse(after) / 1000}\n`);
    });

    it("with external etcd: restarts the three components the node runs, and checks no etcd member", () => {
        const h = host("external", 10, false);
        const result = renew(h);
        expect([result.status, result.stderr]).toEqual([0, ""]);
        const log = calls(h).map((c) => c.call);
        expect(log).not.toContainEqual(expect.stringMatching(/etcd/));
        expect(log.filter((c) => / none$/.test(c))).toEqual(COMPONENTS.filter((c) => c !== "etcd").map((c) => `crictl ps ${c} none`));
    });

    it.each([
        ["a control-plane Node is not Ready", "cp-1-ready", "False", /gate: control-plane nodes not Ready: cp-1/],
        ["an etcd member is unhealthy", "etcd-down", "cp-2", /gate: etcd members not all started, healthy and voting .*a2 cp-2 false false/],
    ])("a failed gate (%s) stops the run before anything is renewed, naming the check", (_what, file, value, message) => {
        const h = host("gate", 10);
        writeFileSync(join(h.state, file), value);
        const result = renew(h);
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(message);
        const log = calls(h).map((c) => c.call);
        expect(log).not.toContain("kubeadm certs renew all");
        expect(log).not.toContainEqual(expect.stringMatching(/^crictl/));
        expect(readdirSync(join(h.root, MANIFESTS))).toHaveLength(COMPONENTS.length);
    });

    it("fails loudly when kubeadm cannot read the certificates, and renews nothing", () => {
        const h = host("check-fails", 10);
        writeFileSync(join(h.state, "check-fails"), "");
        const result = renew(h);
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/kubeadm certs check-expiration failed[\s\S]*the certificate directory is unreadable/);
        expect(calls(h).map((c) => c.call)).toEqual(["kubeadm certs check-expiration -o json"]);
        expect(existsSync(join(h.root, PROM_FILE))).toBe(false);
    });

    it("puts back a manifest an interrupted restart left held, before anything else", () => {
        const h = host("interrupted", 200);
        mkdirSync(join(h.root, HELD), { recursive: true });
        writeFileSync(join(h.root, HELD, "kube-scheduler.yaml"), readFileSync(join(h.root, MANIFESTS, "kube-scheduler.yaml")));
        rmSync(join(h.root, MANIFESTS, "kube-scheduler.yaml"));
        const result = renew(h);
        expect([result.status, result.stderr]).toEqual([0, ""]);
        expect(result.stdout).toMatch(/putting back the manifest of kube-scheduler/);
        expect(readdirSync(join(h.root, HELD))).toEqual([]);
        expect(readdirSync(join(h.root, MANIFESTS))).toContain("kube-scheduler.yaml");
        const log = calls(h);
        expect(log[0]).toEqual({ call: "crictl ps kube-scheduler running", present: COMPONENTS });
        expect(log.map((c) => c.call)).not.toContain("kubeadm certs renew all");
    });

    it("renews by hand whatever the expiry with `now`, and never with `check`", () => {
        const checked = host("check", 10);
        const check = renew(checked, "check");
        expect([check.status, check.stderr]).toEqual([0, ""]);
        expect(calls(checked).map((c) => c.call)).toEqual(["kubeadm certs check-expiration -o json", "kubeadm certs check-expiration -o json"]);
        const now = host("now", 200);
        const result = renew(now, "now");
        expect([result.status, result.stderr]).toEqual([0, ""]);
        expect(calls(now).map((c) => c.call)).toContain("kubeadm certs renew all");
    });
});

/** A real certificate from a real etcd CA, valid for `days` from now, as the program issues it. */
const etcdCa = issueFromSpec(CA_SPECS.etcd);
async function etcdCert(spec: typeof APISERVER_ETCD_CLIENT_SPEC, days: number): Promise<IssuedPem> {
    return issueFromSpec({ ...spec, validityHours: days * 24 }, await etcdCa);
}
const seriesOf = (metric: string) =>
    Object.fromEntries(
        [...metric.matchAll(/^kubeadm_ha_certificate_expiry_timestamp_seconds\{certificate="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]),
    );
const inDays = (days: number) => Math.floor(Date.now() / 1000) + days * DAY;

describe("external etcd's certificates, which kubeadm neither lists nor renews", () => {
    const member = { hostname: "ip-10-0-0-110.ec2.internal", ip: "10.0.0.110" };

    it("are each a series of the node's expiry metric, beside kubeadm's earliest, and never make the timer renew", async () => {
        // kubeadm's are 200 days out; the program's client certificate at etcd 12, a member's peer 5.
        const h = host("external-certs", 200, false);
        writeFileSync(join(h.root, "etc/kubernetes/pki/apiserver-etcd-client.crt"), (await etcdCert(APISERVER_ETCD_CLIENT_SPEC, 12)).certPem);
        const dir = join(h.root, "etc/kubeadm-ha/etcd-certificates");
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, "kubeadm-ha-etcd-0-peer.crt"), (await etcdCert(etcdMemberCertSpec("peer", member), 5)).certPem);
        writeFileSync(join(dir, "etcd-healthcheck-client.crt"), (await etcdCert(ETCD_HEALTHCHECK_CLIENT_SPEC, 300)).certPem);
        const result = renew(h);
        expect([result.status, result.stderr]).toEqual([0, ""]);
        // The timer renews only what kubeadm can: nothing here.
        expect(calls(h).map((c) => c.call)).not.toContain("kubeadm certs renew all");
        // The expiry line stays kubeadm's, what a renewal on the node changes; the others are logged.
        expect(parseCertificateExpiry(result.stdout)).toBe(expiryOf(h));
        expect(result.stdout).toMatch(/kubeadm-ha-etcd-0-peer \(issued by pulumi up for external etcd, renewed only by pulumi up\) expires at \d{4}-/);
        const metric = readFileSync(join(h.root, PROM_FILE), "utf8");
        const lint = spawnSync("promtool", ["check", "metrics"], { input: metric, encoding: "utf8" });
        expect([lint.status, lint.stdout + lint.stderr]).toEqual([0, ""]);
        const series = seriesOf(metric);
        expect(Object.keys(series).sort()).toEqual(["apiserver-etcd-client", "etcd-healthcheck-client", "kubeadm", "kubeadm-ha-etcd-0-peer"]);
        expect(series.kubeadm).toBe(Date.parse(expiryOf(h)) / 1000);
        // Certificates are issued to the second: within a minute of the days they were issued for.
        for (const [name, days] of [
            ["apiserver-etcd-client", 12],
            ["kubeadm-ha-etcd-0-peer", 5],
            ["etcd-healthcheck-client", 300],
        ] as const) {
            expect([name, Math.abs(series[name] - inDays(days)) < 60]).toEqual([name, true]);
        }
    });

    it("are not reported with stacked etcd, where kubeadm issues and renews apiserver-etcd-client itself", async () => {
        const h = host("stacked-certs", 200, true);
        writeFileSync(join(h.root, "etc/kubernetes/pki/apiserver-etcd-client.crt"), (await etcdCert(APISERVER_ETCD_CLIENT_SPEC, 12)).certPem);
        const result = renew(h, "check");
        expect([result.status, result.stderr]).toEqual([0, ""]);
        expect(Object.keys(seriesOf(readFileSync(join(h.root, PROM_FILE), "utf8")))).toEqual(["kubeadm"]);
    });

    it("fail the check loudly when one cannot be read, instead of leaving it out", () => {
        const h = host("unreadable-cert", 200, false);
        writeFileSync(join(h.root, "etc/kubernetes/pki/apiserver-etcd-client.crt"), "not a certificate\n");
        const result = renew(h, "check");
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/openssl cannot read the certificate .*apiserver-etcd-client\.crt/);
    });

    it("reach every control-plane node through its install step, which replaces what an earlier run left", async () => {
        const h = host("install-certs", 200, false);
        const dir = join(h.root, "etc/kubeadm-ha/etcd-certificates");
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, "kubeadm-ha-etcd-2-server.crt"), (await etcdCert(etcdMemberCertSpec("server", member), 3)).certPem);
        const server = await etcdCert(etcdMemberCertSpec("server", member), 40);
        const command = renderCertRenewalInstall({
            nodeIndex: 0,
            nodeCount: 3,
            stacked: false,
            etcdCertificates: [{ name: "kubeadm-ha-etcd-0-server", certPem: server.certPem }],
        });
        expect(command).not.toContain(server.keyPem.trim().split("\n")[1]);
        expect(shellcheck(`#!/bin/bash\n${command}`)).toBe("");
        const script = /<<'KUBEADM_HA_STEP_EOF'\n([\s\S]*)KUBEADM_HA_STEP_EOF\nsudo bash "\$step_script"\n$/.exec(command)![1];
        const result = spawnSync("bash", [writeTemp(h.dir, "install.sh", script)], { env: h.env, encoding: "utf8" });
        expect([result.status, result.stderr]).toEqual([0, ""]);
        // A replaced member's old certificate is gone; the one planned now is there, byte for byte.
        expect(readdirSync(dir)).toEqual(["kubeadm-ha-etcd-0-server.crt"]);
        expect(readFileSync(join(dir, "kubeadm-ha-etcd-0-server.crt"), "utf8")).toBe(server.certPem);
        expect(statSync(join(dir, "kubeadm-ha-etcd-0-server.crt")).mode & 0o777).toBe(0o644);
        const series = seriesOf(readFileSync(join(h.root, PROM_FILE), "utf8"));
        expect(Object.keys(series).sort()).toEqual(["kubeadm", "kubeadm-ha-etcd-0-server"]);
        expect(Math.abs(series["kubeadm-ha-etcd-0-server"] - inDays(40)) < 60).toBe(true);
        expect(() => renderCertRenewalInstall({ nodeIndex: 0, nodeCount: 3, stacked: false, etcdCertificates: [{ name: "../x", certPem: "" }] })).toThrow(
            /not lowercase letters/,
        );
    });
});

describe("the install step against stand-ins", () => {
    it("writes the program, settings and units under the host root, enables the timer, and reports the expiry", () => {
        const h = host("install", 200);
        rmSync(join(h.root, "etc/kubeadm-ha/cert-renewal.env"));
        const command = renderCertRenewalInstall({ nodeIndex: 2, nodeCount: 3, stacked: true });
        const script = /<<'KUBEADM_HA_STEP_EOF'\n([\s\S]*)KUBEADM_HA_STEP_EOF\nsudo bash "\$step_script"\n$/.exec(command)![1];
        const result = spawnSync("bash", [writeTemp(h.dir, "install.sh", script)], { env: h.env, encoding: "utf8" });
        expect([result.status, result.stderr]).toEqual([0, ""]);
        const program = join(h.root, CERT_RENEWAL_PROGRAM_PATH);
        expect(readFileSync(program, "utf8")).toBe(renderCertRenewalProgram() + "\n");
        expect(statSync(program).mode & 0o777).toBe(0o755);
        expect(readFileSync(join(h.root, "etc/kubeadm-ha/cert-renewal.env"), "utf8")).toBe(`RENEW_WINDOW_DAYS=${CERT_RENEWAL_BACKSTOP_DAYS}\nSTACKED=true\n`);
        expect(readFileSync(join(h.root, "etc/systemd/system/kubeadm-ha-cert-renewal.timer"), "utf8")).toBe(renderCertRenewalTimer(2, 3) + "\n");
        expect(readFileSync(join(h.root, "etc/systemd/system/kubeadm-ha-cert-renewal.service"), "utf8")).toBe(CERT_RENEWAL_SERVICE + "\n");
        expect(calls(h).map((c) => c.call)).toEqual([
            "systemctl daemon-reload",
            "systemctl enable --now kubeadm-ha-cert-renewal.timer",
            "kubeadm certs check-expiration -o json",
            "kubeadm certs check-expiration -o json",
        ]);
        expect(parseCertificateExpiry(result.stdout)).toBe(expiryOf(h));
    });
});

describe("the certificates output", () => {
    it("is the earliest of what the member steps read and of the external etcd certificates in the state", async () => {
        const kubeadm = new Date(Date.now() + 200 * DAY * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
        const steps = [`[kubeadm-ha] member\ncertificates-expire-at: ${kubeadm}\n`, ""];
        const peer = await etcdCert(etcdMemberCertSpec("peer", { hostname: "ip-10-0-0-110.ec2.internal", ip: "10.0.0.110" }), 20);
        const client = await etcdCert(APISERVER_ETCD_CLIENT_SPEC, 100);
        const report = certificateReport(steps, [client.certPem, peer.certPem], "");
        // The peer certificate, 20 days out, before kubeadm's 200: it is what expires first.
        expect(report.earliestExpiry).toBe(certificateExpiry(peer.certPem));
        expect(Math.abs(Date.parse(report.earliestExpiry!) / 1000 - inDays(20)) < 60).toBe(true);
        expect(report).not.toHaveProperty("renewalRequestedFor");
        expect(certificateReport(steps, [], "2027-01-01T00:00:00Z")).toEqual({ earliestExpiry: kubeadm, renewalRequestedFor: "2027-01-01T00:00:00Z" });
        expect(certificateReport([""], [], "")).toEqual({});
    });
});

describe("renewal under pulumi up", () => {
    const now = new Date("2026-11-22T00:00:00Z");
    it("asks for a renewal once the last update's earliest expiry is within the window, and keeps asking for the same one", () => {
        // 61 days out: not yet; 60 days: due.
        expect(renewalRequest({ earliestExpiry: "2027-01-22T00:00:01Z" }, now, 60)).toBe("");
        expect(renewalRequest({ earliestExpiry: "2027-01-21T00:00:00Z" }, now, 60)).toBe("2027-01-21T00:00:00Z");
        // After the renewal the nodes report a year more: the request stays what it was, so nothing re-runs.
        expect(renewalRequest({ earliestExpiry: "2028-01-10T00:00:00Z", renewalRequestedFor: "2027-01-21T00:00:00Z" }, now, 60)).toBe("2027-01-21T00:00:00Z");
        // A new stack, or one that has not reported yet.
        expect(renewalRequest(undefined, now, 60)).toBe("");
        expect(renewalRequest({}, now, 60)).toBe("");
    });
});
