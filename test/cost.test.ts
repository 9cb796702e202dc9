/**
 * The monthly cost estimate: hand-computed totals for the example stacks, what an unknown region or
 * instance type does to it, and the same figure from the program itself (its costEstimate output).
 */
import { NONCURRENT_SNAPSHOT_DAYS } from "../core/backup-iam";
import { ClusterConfig, parseConfig } from "../core/config";
import { ASSUMED_SNAPSHOT_MIB, estimateCost, formatCostEstimate } from "../core/cost";
import { PRICES } from "../core/prices";
import { render, readStackConfig } from "../tools/render";
import { zonesOf } from "../tools/offline/engine";
import { runProgram } from "./harness";
import { tempDir } from "./tools";

/** A configuration as the program parses it: the defaults with `values` set. */
function configWith(values: Record<string, string> = {}): ClusterConfig {
    return parseConfig((k) => values[k], Object.keys(values)).config;
}

const HOURS = 730;
/** The default backups: one upload every 15 minutes, kept 14 days and then 7 as a noncurrent version. */
const UPLOADS = (HOURS * 3600) / 900; // 2,920 a month
const KEPT = (14 + 7) * 96; // 2,016 snapshots
const SNAPSHOT_GB = 100 / 1024; // 100 MiB; S3 counts a GB as 2^30 bytes

describe("the monthly cost estimate", () => {
    it("prices the dev stack (three t3.medium nodes, stacked etcd, us-east-1) at the hand-computed total", () => {
        const { config: raw, region } = readStackConfig("dev");
        const estimate = estimateCost(configWith(raw), region, 3);
        // us-east-1, as of the table's date: t3.medium $0.0416/h, gp3 $0.08/GB-month, NLB $0.0225/h,
        // one NLCU $0.006/h, public IPv4 $0.005/h for 3 nodes + 3 load balancer zones; S3 Standard
        // $0.023/GB-month and $0.005 per 1,000 PUTs for the etcd snapshots (SSE-S3: no KMS).
        const byHand =
            3 * 0.0416 * HOURS + // instances          91.104
            3 * 30 * 0.08 + //      root volumes        7.20
            0.0225 * HOURS + //     load balancer      16.425
            0.006 * HOURS + //      one NLCU            4.38
            (3 + 3) * 0.005 * HOURS + // addresses     21.90
            KEPT * SNAPSHOT_GB * 0.023 + // snapshots   4.528125 (196.875 GB)
            (UPLOADS * 0.005) / 1000; // uploads        0.0146
        expect(byHand).toBeCloseTo(145.551725, 6);
        expect(estimate.totalUsdPerMonth).toBe(145.55);
        expect(estimate.region).toBe("us-east-1");
        expect(estimate.unpriced).toEqual([]);
        expect(estimate.items.map((i) => [i.item, i.usdPerMonth])).toEqual([
            ["3 × t3.medium control-plane instances", 91.1],
            ["3 × 30 GiB gp3 root volumes", 7.2],
            ["Network Load Balancer", 16.43],
            ["1 load balancer capacity unit (NLCU) each hour, enough for light API traffic", 4.38],
            ["6 public IPv4 addresses: one per node (3), one per load balancer zone (3)", 21.9],
            ["etcd snapshots in S3 Standard: 2,016 kept (one every 15m for 14 + 7 days) × 100 MiB assumed each", 4.53],
            ["2,920 snapshot uploads a month (S3 PUT requests)", 0.01],
        ]);
    });

    it("adds the etcd nodes, their volumes and addresses for the external stack", () => {
        const { config: raw, region } = readStackConfig("external");
        const byHand =
            3 * 0.0416 * HOURS +
            3 * 0.0208 * HOURS +
            6 * 30 * 0.08 +
            0.0225 * HOURS +
            0.006 * HOURS +
            (6 + 3) * 0.005 * HOURS +
            KEPT * SNAPSHOT_GB * 0.023 +
            (UPLOADS * 0.005) / 1000;
        expect(estimateCost(configWith(raw), region, 3).totalUsdPerMonth).toBe(Math.round(byHand * 100) / 100);
        expect(byHand).toBeCloseTo(209.253725, 6);
    });

    it("says what it cannot price in a region the table lacks, and does not crash", () => {
        const estimate = estimateCost(configWith(), "ap-south-1", 3);
        expect(estimate.items).toEqual([]);
        expect(estimate.totalUsdPerMonth).toBe(0);
        expect(estimate.unpriced.map((u) => u.item)).toEqual([
            "3 × t3.medium control-plane instances",
            "3 × 30 GiB gp3 root volumes",
            "Network Load Balancer",
            "1 load balancer capacity unit (NLCU) each hour, enough for light API traffic",
            "6 public IPv4 addresses: one per node (3), one per load balancer zone (3)",
            "etcd snapshots in S3 Standard: 2,016 kept (one every 15m for 14 + 7 days) × 100 MiB assumed each",
            "2,920 snapshot uploads a month (S3 PUT requests)",
        ]);
        for (const u of estimate.unpriced) expect(u.reason).toBe("no prices for region ap-south-1; the table covers us-east-1, us-west-2, eu-west-1");
        const text = formatCostEstimate(estimate).join("\n");
        expect(text).toContain(
            "per month, not counting the unpriced items below\nnot priced:\n- 3 × t3.medium control-plane instances: no prices for region ap-south-1",
        );
    });

    it("prices what it can when only an instance type is missing, and names the type", () => {
        const estimate = estimateCost(configWith({ instanceType: "m8g.large", controlPlaneCount: "5" }), "eu-west-1", 4);
        expect(estimate.unpriced).toEqual([{ item: "5 × m8g.large control-plane instances", reason: "no eu-west-1 price for m8g.large in the table" }]);
        // 5 volumes, the load balancer, one NLCU, 5 + 4 addresses, the snapshots at eu-west-1 prices.
        const byHand = 5 * 30 * 0.088 + 0.0252 * HOURS + 0.006 * HOURS + (5 + 4) * 0.005 * HOURS + KEPT * SNAPSHOT_GB * 0.023 + (UPLOADS * 0.005) / 1000;
        expect(estimate.totalUsdPerMonth).toBe(Math.round(byHand * 100) / 100);
    });

    it("lists what it leaves out, including the CPU credit surplus only when unlimited credits apply", () => {
        const standard = estimateCost(configWith(), "us-east-1", 3).excluded.join("\n");
        for (const left of [
            "data transfer",
            "load balancer capacity units beyond one per hour",
            "etcd snapshots in S3 beyond the assumed size",
            "downloads for a restore",
            "EBS snapshots",
            "CloudWatch",
        ]) {
            expect(standard).toContain(left);
        }
        expect(standard).not.toContain("CPU credit");
        expect(estimateCost(configWith({ cpuCredits: "unlimited" }), "us-east-1", 3).excluded.join("\n")).toContain("CPU credit surplus");
        expect(estimateCost(configWith({ cpuCredits: "unlimited", instanceType: "m7g.large" }), "us-east-1", 3).excluded.join("\n")).not.toContain(
            "CPU credit",
        );
    });

    it("has a dated table with sources, covering the default and common types in every region it lists", () => {
        expect(PRICES.asOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
        for (const source of PRICES.sources) expect(source).toMatch(/^https:\/\/aws\.amazon\.com\//);
        expect(Object.keys(PRICES.regions)).toEqual(expect.arrayContaining(["us-east-1", "us-west-2", "eu-west-1"]));
        const types = ["t3.small", "t3.medium", "t3.large", "t3.xlarge", "t4g.medium", "m5.large", "m6i.large", "m7i.large", "c6i.large"];
        for (const [region, prices] of Object.entries(PRICES.regions)) {
            for (const type of types) expect([region, type, prices.instanceHourly[type] > 0]).toEqual([region, type, true]);
            expect([prices.gp3GbMonth, prices.nlbHourly, prices.nlcuHourly, prices.publicIpv4Hourly].every((p) => p > 0)).toBe(true);
            expect([region, prices.s3StandardGbMonth, prices.s3PutPer1000, prices.kmsKeyMonthly, prices.kmsRequestsPer10000].every((p) => p !== 0)).toBe(true);
        }
        expect(PRICES.sources).toEqual(expect.arrayContaining(["https://aws.amazon.com/s3/pricing/", "https://aws.amazon.com/kms/pricing/"]));
    });
});

describe("what the etcd backups cost", () => {
    const priced = (values: Record<string, string>) => Object.fromEntries(estimateCost(configWith(values), "us-east-1", 3).items.map((i) => [i.item, i]));

    it("prices the KMS key the program creates, and a data key request for each upload under SSE-KMS", () => {
        const items = priced({ etcdBackupKmsKey: "create" });
        expect(items["1 KMS key for the etcd snapshots (etcdBackupKmsKey: create)"].usdPerMonth).toBe(1);
        // No bucket key: each upload asks KMS for a data key, $0.03 per 10,000 requests.
        expect(items["2,920 KMS requests a month (a data key for each upload under SSE-KMS)"]).toEqual({
            item: "2,920 KMS requests a month (a data key for each upload under SSE-KMS)",
            basis: "2,920 × $0.03/10,000",
            usdPerMonth: 0.01,
        });
        expect(estimateCost(configWith({ etcdBackupKmsKey: "create" }), "us-east-1", 3).totalUsdPerMonth).toBe(146.56);
        // A key of another stack: its requests are this cluster's, its monthly charge is not.
        const arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        const other = Object.keys(priced({ etcdBackupKmsKey: arn }));
        expect(other).toContain("2,920 KMS requests a month (a data key for each upload under SSE-KMS)");
        expect(other.filter((i) => i.includes("KMS key"))).toEqual([]);
        // SSE-S3 (the default): no KMS at all.
        expect(Object.keys(priced({})).filter((i) => i.includes("KMS"))).toEqual([]);
    });

    it("keeps pricing the key with backups off, since the key still exists, and nothing else of S3", () => {
        const items = Object.keys(priced({ etcdBackupRetention: "0", etcdBackupKmsKey: "create" }));
        expect(items.filter((i) => /S3|KMS/.test(i))).toEqual(["1 KMS key for the etcd snapshots (etcdBackupKmsKey: create)"]);
    });

    it("stores what the interval and the retention keep, at the assumed snapshot size", () => {
        expect(ASSUMED_SNAPSHOT_MIB).toBe(100);
        expect(NONCURRENT_SNAPSHOT_DAYS).toBe(7);
        // Hourly, kept 30 days: (30 + 7) × 24 = 888 snapshots of 100 MiB, 86.72 GB.
        const item = estimateCost(configWith({ etcdBackupInterval: "1h", etcdBackupS3RetentionDays: "30" }), "us-west-2", 3).items.find((i) =>
            i.item.startsWith("etcd snapshots"),
        )!;
        expect(item).toEqual({
            item: "etcd snapshots in S3 Standard: 888 kept (one every 1h for 30 + 7 days) × 100 MiB assumed each",
            basis: "86.72 GB × $0.023/GB-month",
            usdPerMonth: Math.round(((888 * 100) / 1024) * 0.023 * 100) / 100,
        });
        expect(Object.keys(priced({ etcdBackupInterval: "1h" }))).toContain("730 snapshot uploads a month (S3 PUT requests)");
    });

    it("does not guess how long an existing bucket keeps them, and says how much a month adds", () => {
        const estimate = estimateCost(configWith({ etcdBackupBucket: "shared-backups" }), "us-east-1", 3);
        expect(estimate.items.map((i) => i.item).filter((i) => i.startsWith("etcd snapshots"))).toEqual([]);
        expect(estimate.unpriced).toEqual([
            {
                item: "etcd snapshots in etcdBackupBucket shared-backups",
                reason: "that bucket's own lifecycle rules decide how long they stay; 2,920 uploads a month add 285.16 GB at 100 MiB each",
            },
        ]);
        expect(estimate.items.map((i) => i.item)).toContain("2,920 snapshot uploads a month (S3 PUT requests)");
    });
});

describe("the program's costEstimate output", () => {
    it.each([false, true])("is the dev stack's estimate for its region, known in preview (preview: %s)", async (preview) => {
        const { config: raw, region } = readStackConfig("dev");
        const run = await runProgram(raw, { preview, regionZones: zonesOf(region) });
        expect(run.outputs.costEstimate).toEqual(estimateCost(configWith(raw), "us-east-1", 3));
        expect(run.outputs.costEstimate.totalUsdPerMonth).toBe(145.55);
    });

    it("counts one load balancer address per zone the plan uses", async () => {
        // Five control-plane nodes in a four-zone region: four subnets, so four load balancer addresses.
        const run = await runProgram({ controlPlaneCount: "5" }, { preview: true, regionZones: zonesOf("us-west-2") });
        expect(run.outputs.costEstimate.region).toBe("us-west-2");
        expect(run.outputs.costEstimate.items.map((i: { item: string }) => i.item)).toContain(
            "9 public IPv4 addresses: one per node (5), one per load balancer zone (4)",
        );
    });

    it("is what the offline render prints in its summary", async () => {
        const { summary } = await render("dev", tempDir("render-cost"));
        expect(summary).toContain(
            [
                "monthly cost estimate (us-east-1, on-demand prices as of " + PRICES.asOf + ", 730 hours a month):",
                "-  $91.10  3 × t3.medium control-plane instances (3 × $0.0416/h)",
                "-   $7.20  3 × 30 GiB gp3 root volumes (90 GB × $0.08/GB-month)",
                "-  $16.43  Network Load Balancer ($0.0225/h)",
                "-   $4.38  1 load balancer capacity unit (NLCU) each hour, enough for light API traffic ($0.006/NLCU-h)",
                "-  $21.90  6 public IPv4 addresses: one per node (3), one per load balancer zone (3) (6 × $0.005/h)",
                "-   $4.53  etcd snapshots in S3 Standard: 2,016 kept (one every 15m for 14 + 7 days) × 100 MiB assumed each (196.88 GB × $0.023/GB-month)",
                "-   $0.01  2,920 snapshot uploads a month (S3 PUT requests) (2,920 × $0.005/1,000)",
                "= $145.55  per month",
                "not included:",
                "- data transfer: to the internet, and between zones (etcd and API traffic crosses them)",
            ].join("\n"),
        );
    });
});
