/**
 * External etcd's certificates under the lifecycle simulation. kubeadm's renewal leaves every etcd
 * certificate out when etcd is external (GetCertsWithoutEtcd), so the program's own certificates
 * (apiserver-etcd-client, each member's server and peer, the healthcheck client) must be in the
 * stack's report and the nodes' expiry metric, and re-issued by `pulumi up` in the same window as
 * kubeadm's. The stand-in for @pulumi/tls issues them months old here, and replaces a certificate
 * within its early renewal period as the provider's plan does.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { METRICS_DIR } from "../core/backup";
import { LifecycleSimulation, UpResult } from "../tools/offline/lifecycle";
import { resetState } from "../tools/offline/engine";
import { issueCertificatesAsOf } from "../tools/offline/tls";
import { runProgram } from "./harness";
import { tempDir } from "./tools";

const EXTERNAL = { etcdTopology: "external", etcdCount: "3" };
const CP = (i: number) => `kubeadm-ha-cp-${i}`;
const ETCD = (i: number) => `kubeadm-ha-etcd-${i}`;
const DAY = 86_400_000;
const CERT = "tls:index/locallySignedCert:LocallySignedCert";

const daysLeft = (iso: string) => (Date.parse(iso) - Date.now()) / DAY;
const expiryOf = (pem: string) => new X509Certificate(pem).validTo;

function hostOf(sim: LifecycleSimulation, instance: string) {
    return Object.values(sim.world().hosts).find((h) => h.instance === instance && h.alive)!;
}

/** The node's expiry metric, as days left per certificate. */
function metricDays(sim: LifecycleSimulation, instance: string): Record<string, number> {
    const text = readFileSync(join(hostOf(sim, instance).root, METRICS_DIR, "kubeadm_ha_certificates.prom"), "utf8");
    return Object.fromEntries(
        [...text.matchAll(/^kubeadm_ha_certificate_expiry_timestamp_seconds\{certificate="([^"]+)"\} (\d+)$/gm)].map((m) => [
            m[1],
            (Number(m[2]) * 1000 - Date.now()) / DAY,
        ]),
    );
}

function expectHealthy(sim: LifecycleSimulation, result: UpResult): void {
    expect(result.failed && `${result.failed.step} on ${result.failed.host}: ${result.failed.output}`).toBeUndefined();
    const world = sim.world();
    expect(world.etcd.formed).toBe(1);
    expect(world.events.filter((e) => e.what === "etcd-quorum-lost")).toEqual([]);
    for (let i = 0; i < 3; i++) expect([CP(i), sim.apiReady(CP(i))]).toEqual([CP(i), true]);
}

const ETCD_CERTIFICATES = ["apiserver-etcd-client", "etcd-healthcheck-client", ...[0, 1, 2].flatMap((i) => [`${ETCD(i)}-server`, `${ETCD(i)}-peer`])];

describe("external etcd's certificates under pulumi up", () => {
    it("are reported and exported as they near expiry, then re-issued and placed by the next pulumi up in the window, with no etcd restart", async () => {
        resetState();
        const sim = new LifecycleSimulation(tempDir("lifecycle-etcd-certs"), runProgram);
        // A stack whose certificates the program issued 320 days ago: 45 days left, inside the 60-day window.
        issueCertificatesAsOf(320);
        let first: UpResult;
        try {
            first = await sim.up(EXTERNAL);
        } finally {
            issueCertificatesAsOf(0);
        }
        expectHealthy(sim, first);

        // The report: the external etcd certificates, 45 days out, before kubeadm's (a year from each join).
        const reported = first.run.outputs.certificates.earliestExpiry as string;
        expect(Math.round(daysLeft(reported))).toBe(45);
        for (let i = 0; i < 3; i++) expect(daysLeft(hostOf(sim, CP(i)).certExpiry!)).toBeGreaterThan(300);
        // The nodes' metric, which the alert reads: kubeadm's earliest and each external etcd certificate.
        for (let i = 0; i < 3; i++) {
            const days = metricDays(sim, CP(i));
            expect(Object.keys(days).sort()).toEqual(["kubeadm", ...ETCD_CERTIFICATES].sort());
            expect(days.kubeadm).toBeGreaterThan(300);
            for (const name of ETCD_CERTIFICATES) expect([CP(i), name, Math.round(days[name])]).toEqual([CP(i), name, 45]);
        }

        // The next pulumi up, in the window: every leaf the program issued is new, and placed.
        const since = sim.world().events.length;
        const second = await sim.up(EXTERNAL);
        expectHealthy(sim, second);
        const certs = second.run.ofType(CERT);
        for (const cert of certs) expect([cert.name, daysLeft(expiryOf(cert.state.certPem)) > 360]).toEqual([cert.name, true]);
        const ran = second.steps.map((s) => s.step);
        expect(ran).toEqual(expect.arrayContaining([0, 1, 2].flatMap((i) => [`${ETCD(i)}-pki`, `${CP(i)}-pki`, `${CP(i)}-cert-renewal`])));
        for (let i = 0; i < 3; i++) {
            const member = hostOf(sim, ETCD(i));
            for (const kind of ["server", "peer"]) {
                const placed = readFileSync(join(member.root, "etc/etcd/pki", `${kind}.crt`), "utf8");
                expect([ETCD(i), kind, placed]).toEqual([ETCD(i), kind, certs.find((c) => c.name === `${ETCD(i)}-${kind}`)!.state.certPem]);
            }
            const client = readFileSync(join(hostOf(sim, CP(i)).root, "etc/kubernetes/pki/apiserver-etcd-client.crt"), "utf8");
            expect(client).toBe(certs.find((c) => c.name === "kubeadm-ha-apiserver-etcd-client")!.state.certPem);
            for (const name of ETCD_CERTIFICATES) expect([CP(i), name, Math.round(metricDays(sim, CP(i))[name])]).toEqual([CP(i), name, 365]);
        }
        // etcd reads its certificate files at every new connection (etcd's transport TLSInfo), and so
        // does the API servers' etcd client: no member is restarted, no member changes.
        const events = sim.world().events.slice(since);
        expect(events.filter((e) => e.etcd === "external").map((e) => e.what)).toEqual([]);
        // kubeadm's own certificates were not due: the member steps ran for the request and renewed nothing.
        expect(events.filter((e) => e.what === "certs-renew")).toEqual([]);
        expect(daysLeft(second.run.outputs.certificates.earliestExpiry)).toBeGreaterThan(360);

        // And the run after changes nothing.
        expect((await sim.up(EXTERNAL)).steps).toEqual([]);
    }, 300_000);
});
