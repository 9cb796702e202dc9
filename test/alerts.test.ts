/** The control-plane alert rules, judged by Prometheus's own promtool. */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { requireTool } from "./tools";

const DIR = join(__dirname, "..", "monitoring");
const RULES = join(DIR, "control-plane.rules.yaml");
const TESTS = join(DIR, "control-plane.rules.test.yaml");

function promtool(args: string[]): { status: number | null; output: string } {
    requireTool("promtool", "prometheus");
    const result = spawnSync("promtool", args, { encoding: "utf8", cwd: DIR });
    return { status: result.status, output: result.stdout + result.stderr };
}

describe("control-plane alert rules", () => {
    const alerts: string[] = parse(readFileSync(RULES, "utf8")).groups.flatMap((g: { rules: { alert: string }[] }) => g.rules.map((r) => r.alert));

    it("pass promtool check rules", () => {
        const { status, output } = promtool(["check", "rules", RULES]);
        expect([status, output]).toEqual([0, expect.stringContaining(`SUCCESS: ${alerts.length} rules found`)]);
    });

    it("pass their promtool unit tests", () => {
        const { status, output } = promtool(["test", "rules", TESTS]);
        expect([status, output.trim()]).toEqual([0, expect.stringMatching(/SUCCESS$/)]);
    });

    it("cover every alert with a case that fires it and one that does not", () => {
        const cases = parse(readFileSync(TESTS, "utf8")).tests.flatMap(
            (t: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }) => t.alert_rule_test,
        );
        for (const alert of alerts) {
            const mine = cases.filter((c: { alertname: string }) => c.alertname === alert);
            expect([
                alert,
                mine.some((c: { exp_alerts: unknown[] }) => c.exp_alerts.length > 0),
                mine.some((c: { exp_alerts: unknown[] }) => c.exp_alerts.length === 0),
            ]).toEqual([alert, true, true]);
        }
        expect(alerts).toEqual(
            expect.arrayContaining([
                "KubeAPIServerInstanceDown",
                "KubeAPILoadBalancedUnavailable",
                "EtcdNoLeader",
                "EtcdInsufficientMembers",
                "KubeSchedulerNoLeader",
                "KubeControllerManagerNoLeader",
                "EtcdFrequentLeaderChanges",
                "KubeLeaderElectionFlapping",
                "KubeClientCertificateExpiringSoon",
                "KubeletClientCertificateExpiringSoon",
                "EtcdBackupTooOld",
                "KubeadmCertificateExpiresSoon",
            ]),
        );
    });
});
