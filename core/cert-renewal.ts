/**
 * The backstop that keeps the certificates kubeadm issues on the control-plane nodes from expiring: a
 * daily systemd timer on each node runs scripts/renew-certificates.sh, which renews them (`kubeadm
 * certs renew all`) and restarts the static pods that read them, one at a time and gated on the
 * control plane's health, once the earliest is within CERT_RENEWAL_BACKSTOP_DAYS of expiry. `pulumi up`
 * renews earlier, one node at a time, so the timer acts only on a cluster nobody has deployed for
 * months. Pure rendering of the program, its settings and units; the shell functions are
 * scripts/remote/certificates.sh.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { renderEnvironmentFile } from "./backup";
import { renderPkiBundle } from "./pki";
import { renderRemoteCommand } from "./scripts";

const SCRIPTS_DIR = join(__dirname, "..", "scripts");

/**
 * How many days before the earliest expiry the timer renews. Smaller than the window in which
 * `pulumi up` renews (60 days by default), so a maintained cluster renews under `pulumi up`'s
 * one-node-at-a-time control and the timer only catches a cluster left alone; larger than
 * CERT_EXPIRY_ALERT_DAYS, so the alert means both missed.
 */
export const CERT_RENEWAL_BACKSTOP_DAYS = 30;

/** KubeadmCertificateExpiresSoon fires when the earliest expiry is this close (monitoring/control-plane.rules.yaml). */
export const CERT_EXPIRY_ALERT_DAYS = 21;

/** Where the install step puts the program; the service runs it. */
export const CERT_RENEWAL_PROGRAM_PATH = "/usr/local/sbin/kubeadm-ha-renew-certificates";

/**
 * The hour of day (UTC) the first node's timer fires. Early morning UTC, away from the hours most
 * teams deploy in, so a timer's renewal rarely meets a `pulumi up`.
 */
const FIRST_SLOT_MINUTES = 3 * 60;

function script(relativePath: string): string {
    return readFileSync(join(SCRIPTS_DIR, relativePath), "utf8");
}

/**
 * The renewal program installed on every control-plane node: the shared helpers (paths, logging,
 * the admin credential), the etcd membership functions (for the etcd gate), the certificate
 * functions, then the program itself.
 */
export function renderCertRenewalProgram(): string {
    return (
        "#!/usr/bin/env bash\n" +
        `# kubeadm-ha certificate renewal (${CERT_RENEWAL_PROGRAM_PATH}); see the program's own notes below.\n` +
        "set -euo pipefail\n" +
        script("remote/common.sh") +
        script("node-functions.sh").replace(/^#!.*\n/, "") +
        script("remote/members.sh") +
        script("remote/certificates.sh") +
        script("renew-certificates.sh").replace(/^#!.*\n/, "")
    );
}

/** The program's settings, as the systemd EnvironmentFile /etc/kubeadm-ha/cert-renewal.env. */
export function certRenewalEnvironment(stacked: boolean, windowDays = CERT_RENEWAL_BACKSTOP_DAYS): Record<string, string> {
    if (!Number.isInteger(windowDays) || windowDays < 1) throw new Error(`the renewal window must be a whole number of days, not ${windowDays}`);
    return { RENEW_WINDOW_DAYS: String(windowDays), STACKED: String(stacked) };
}

export const CERT_RENEWAL_SERVICE = [
    "[Unit]",
    `Description=kubeadm-ha certificate renewal (within ${CERT_RENEWAL_BACKSTOP_DAYS} days of expiry)`,
    "After=network-online.target kubelet.service containerd.service",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=oneshot",
    "EnvironmentFile=/etc/kubeadm-ha/cert-renewal.env",
    `ExecStart=${CERT_RENEWAL_PROGRAM_PATH}`,
    // Four static pods restarted one at a time, each allowed minutes to stop and to come back, and
    // the gate after them; a hung run must still end before the next day's.
    "TimeoutStartSec=90min",
    "",
].join("\n");

/** "HH:MM" of node `nodeIndex`'s daily slot. */
export function certRenewalSlot(nodeIndex: number, nodeCount: number): string {
    if (!Number.isInteger(nodeCount) || nodeCount < 1) throw new Error(`node count must be a positive whole number, not ${nodeCount}`);
    if (!Number.isInteger(nodeIndex) || nodeIndex < 0 || nodeIndex >= nodeCount) throw new Error(`node index ${nodeIndex} is not in 0..${nodeCount - 1}`);
    const minutes = (FIRST_SLOT_MINUTES + Math.floor((nodeIndex * 24 * 60) / nodeCount)) % (24 * 60);
    return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
}

/**
 * Node `nodeIndex`'s daily timer. The nodes' slots are spread evenly over the day (24h / nodeCount
 * apart: 8h for three nodes, about 3h25m for seven), so no two nodes renew at once: a renewal
 * restarts one component at a time and takes minutes, and while a node restarts its API server and
 * (stacked) its etcd member, the control plane has one instance fewer; two nodes at once would leave
 * a three-node cluster's etcd without a quorum. Fixed wall-clock times in UTC, not a random delay,
 * so the spacing holds by construction. A slot missed while the node was down runs at boot
 * (Persistent), and may then meet another node's slot: late is better than never for a certificate,
 * and the renewal's gate refuses to start while any control-plane pod, Node or etcd member anywhere
 * is not healthy, which another node's restart in progress is not.
 */
export function renderCertRenewalTimer(nodeIndex: number, nodeCount: number): string {
    return [
        "[Unit]",
        "Description=Daily kubeadm-ha certificate renewal check",
        "",
        "[Timer]",
        `OnCalendar=*-*-* ${certRenewalSlot(nodeIndex, nodeCount)}:00 UTC`,
        "AccuracySec=1min",
        "Persistent=true",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ].join("\n");
}

/**
 * A certificate the program issues for external etcd that lives off the control-plane nodes (a
 * member's server or peer certificate, the members' healthcheck client): its name in the node's
 * expiry metric, and the certificate alone, never its key.
 */
export interface IssuedCertificate {
    /** Lowercase letters, digits and '-': "kubeadm-ha-etcd-0-server". */
    name: string;
    certPem: string;
}

/**
 * Where the install step keeps the external etcd certificates the node does not use itself, for the
 * expiry metric: kubeadm's renewal leaves every etcd certificate out when etcd is external
 * (GetCertsWithoutEtcd), and the members' nodes run no node exporter.
 */
export const ETCD_CERTIFICATES_DIR = "/etc/kubeadm-ha/etcd-certificates";

export interface CertRenewalInstall {
    /** This node's place among the control-plane nodes (0-based), which sets its timer's slot. */
    nodeIndex: number;
    nodeCount: number;
    /** Whether etcd runs as a static pod on the control-plane nodes (the gate then checks its members). */
    stacked: boolean;
    /** External etcd: the members' certificates, copied to ETCD_CERTIFICATES_DIR for the expiry metric. */
    etcdCertificates?: readonly IssuedCertificate[];
}

/**
 * The remote command of the cert-renewal-install step for one control-plane node: the program, its
 * settings and units, the timer enabled, the external etcd members' certificates (public parts only)
 * for the expiry metric; it reads the expiry once and its last line is
 * "certificates-expire-at: <ISO 8601 UTC>".
 */
export function renderCertRenewalInstall(args: CertRenewalInstall): string {
    const certificates = args.etcdCertificates ?? [];
    for (const c of certificates) {
        if (!/^[a-z0-9][a-z0-9-]*$/.test(c.name)) throw new Error(`certificate name ${JSON.stringify(c.name)} is not lowercase letters, digits and '-'`);
    }
    return renderRemoteCommand("cert-renewal-install", {
        RENEWAL_PROGRAM: renderCertRenewalProgram(),
        RENEWAL_ENV: renderEnvironmentFile(certRenewalEnvironment(args.stacked)),
        RENEWAL_SERVICE: CERT_RENEWAL_SERVICE,
        RENEWAL_TIMER: renderCertRenewalTimer(args.nodeIndex, args.nodeCount),
        ETCD_CERTIFICATES: renderPkiBundle(certificates.map((c) => ({ path: `${c.name}.crt`, mode: "0644" as const, content: c.certPem }))),
    });
}

/** The expiry line the renewal program and the install step end with. */
export function parseCertificateExpiry(output: string): string | undefined {
    const found = [...output.matchAll(/^certificates-expire-at: (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)$/gm)];
    return found.length > 0 ? found[found.length - 1][1] : undefined;
}

/** When a PEM certificate expires, ISO 8601 UTC to the second. */
export function certificateExpiry(certPem: string): string {
    return new Date(new X509Certificate(certPem).validTo).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** What the stack's last update reported of the cluster's certificates (the `certificates` output). */
export interface CertificateReport {
    /**
     * The earliest expiry, ISO 8601 UTC: of the certificates kubeadm issued on the control-plane
     * nodes, as the member steps last read it, and of the certificates the program issued for
     * external etcd (apiserver-etcd-client, the members' server, peer and healthcheck-client), which
     * kubeadm does not renew.
     */
    earliestExpiry?: string;
    /** The expiry a renewal was last asked for (the member steps' RENEWAL_REQUESTED_FOR). */
    renewalRequestedFor?: string;
}

/**
 * The `certificates` output: the earliest of what the member steps printed (their expiry lines) and
 * of the external etcd certificates the state holds. Those are read from the state, not from a
 * step: a `pulumi up` that re-issues them places them in the same run, and a step's line would
 * keep the old date until that step next ran.
 */
export function certificateReport(memberOutputs: readonly string[], etcdCertificates: readonly string[], renewalRequestedFor: string): CertificateReport {
    const dates = [...memberOutputs.map(parseCertificateExpiry).filter((d): d is string => d !== undefined), ...etcdCertificates.map(certificateExpiry)];
    return {
        ...(dates.length > 0 ? { earliestExpiry: [...dates].sort()[0] } : {}),
        ...(renewalRequestedFor ? { renewalRequestedFor } : {}),
    };
}

/**
 * The member steps' RENEWAL_REQUESTED_FOR: when the earliest expiry the last update saw is within the
 * window, that expiry (a new value, so every member step runs and renews what is due); otherwise what
 * was last asked for, unchanged, so a later update with the same config changes nothing.
 */
export function renewalRequest(previous: CertificateReport | undefined, now: Date, windowDays: number): string {
    const expiry = previous?.earliestExpiry;
    if (expiry && Date.parse(expiry) - now.getTime() <= windowDays * 86_400_000) return expiry;
    return previous?.renewalRequestedFor ?? "";
}
