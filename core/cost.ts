/**
 * What a stack costs a month at on-demand prices, item by item, from the dated table in prices.ts.
 * Pure: the program exports it as a stack output (so `pulumi preview` shows it) and the offline
 * render prints it, both from the validated configuration and the number of zones the plan uses.
 */
import { NONCURRENT_SNAPSHOT_DAYS } from "./backup-iam";
import { ClusterConfig, isBurstable } from "./config";
import { PRICES, RegionPrices } from "./prices";

/**
 * The size the estimate assumes for one etcd snapshot, in MiB: a snapshot is a copy of the member's
 * database file, and a small cluster's is tens of MiB (etcd's quota, and so the most it can be, is
 * 2 GiB by default; the README's benchmark shows 1.3 MiB per 1,000 keys of 1 KiB). Yours is the
 * `dbSize` of `etcdctl endpoint status -w json`; the storage item grows with it in proportion.
 */
export const ASSUMED_SNAPSHOT_MIB = 100;

export interface CostItem {
    /** What is billed, with its quantity: "3 × t3.medium control-plane instances". */
    item: string;
    /** How the monthly figure is made: "3 × $0.0416/h". */
    basis: string;
    usdPerMonth: number;
}

export interface UnpricedItem {
    item: string;
    reason: string;
}

export interface CostEstimate {
    region: string;
    pricesAsOf: string;
    hoursPerMonth: number;
    items: CostItem[];
    /** Items the table has no price for; they are not in the total. */
    unpriced: UnpricedItem[];
    /** Sum of the priced items, to the cent; a lower bound when `unpriced` is not empty. */
    totalUsdPerMonth: number;
    /** Charges the estimate leaves out. */
    excluded: string[];
}

/** Rounds to the cent, clearing binary noise first (0.0225 × 730 is 16.425, not 16.4249…). */
function cents(usd: number): number {
    return Math.round(Number((usd * 100).toPrecision(12))) / 100;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const count = (n: number) => n.toLocaleString("en-US");
/** A quantity of GB with at most two decimals, without binary noise: 196.875 → "196.88". */
const gb = (n: number) => String(Number(n.toFixed(2)));

/**
 * The monthly estimate for a configuration in `region`, whose load balancer spans `zoneCount` zones
 * (one subnet, and one public IPv4 address, per zone). Each node has one public IPv4 address.
 */
export function estimateCost(config: ClusterConfig, region: string | undefined, zoneCount: number): CostEstimate {
    const hours = PRICES.hoursPerMonth;
    const prices: RegionPrices | undefined = region === undefined ? undefined : PRICES.regions[region];
    const items: CostItem[] = [];
    const unpriced: UnpricedItem[] = [];
    const regionReason =
        region === undefined
            ? "the region is unknown (set aws:region in the stack)"
            : `no prices for region ${region}; the table covers ${Object.keys(PRICES.regions).join(", ")}`;
    const add = (item: string, price: (p: RegionPrices) => { usdPerMonth: number; basis: string } | string) => {
        if (!prices) {
            unpriced.push({ item, reason: regionReason });
            return;
        }
        const priced = price(prices);
        if (typeof priced === "string") unpriced.push({ item, reason: priced });
        else items.push({ item, ...priced });
    };
    const instances = (count: number, type: string, role: string) =>
        add(`${count} × ${type} ${role} ${count === 1 ? "instance" : "instances"}`, (p) => {
            const hourly = p.instanceHourly[type];
            if (hourly === undefined) return `no ${region} price for ${type} in the table`;
            return { usdPerMonth: count * hourly * hours, basis: `${count} × $${hourly}/h` };
        });

    const etcdNodes = config.etcdTopology === "external" ? config.etcdCount : 0;
    const nodes = config.controlPlaneCount + etcdNodes;
    instances(config.controlPlaneCount, config.instanceType, "control-plane");
    if (etcdNodes > 0) instances(etcdNodes, config.etcdInstanceType, "etcd");
    add(`${nodes} × ${config.rootVolumeSizeGiB} GiB gp3 root ${nodes === 1 ? "volume" : "volumes"}`, (p) => ({
        usdPerMonth: nodes * config.rootVolumeSizeGiB * p.gp3GbMonth,
        basis: `${nodes * config.rootVolumeSizeGiB} GB × $${p.gp3GbMonth}/GB-month`,
    }));
    add("Network Load Balancer", (p) => ({ usdPerMonth: p.nlbHourly * hours, basis: `$${p.nlbHourly}/h` }));
    add("1 load balancer capacity unit (NLCU) each hour, enough for light API traffic", (p) => ({
        usdPerMonth: p.nlcuHourly * hours,
        basis: `$${p.nlcuHourly}/NLCU-h`,
    }));
    const addresses = nodes + zoneCount;
    add(`${plural(addresses, "public IPv4 address", "public IPv4 addresses")}: one per node (${nodes}), one per load balancer zone (${zoneCount})`, (p) => ({
        usdPerMonth: addresses * p.publicIpv4Hourly * hours,
        basis: `${addresses} × $${p.publicIpv4Hourly}/h`,
    }));

    // etcd snapshots in S3: one upload every interval by the leader; the cluster's own bucket keeps each
    // for etcdBackupS3RetentionDays, then as a noncurrent version (the bucket is versioned) for 7 more.
    // An existing bucket keeps them as its own lifecycle rules say. The KMS key exists whenever it is
    // asked for, backups on or off.
    if (config.etcdBackupRetention > 0) {
        const uploads = Math.round((hours * 3600) / config.etcdBackupInterval.seconds);
        const snapshotGb = ASSUMED_SNAPSHOT_MIB / 1024;
        if (config.etcdBackupBucket === undefined) {
            const days = config.etcdBackupS3RetentionDays + NONCURRENT_SNAPSHOT_DAYS;
            const kept = Math.round((days * 86_400) / config.etcdBackupInterval.seconds);
            add(
                `etcd snapshots in S3 Standard: ${count(kept)} kept (one every ${config.etcdBackupInterval.text} for ${config.etcdBackupS3RetentionDays} + ${NONCURRENT_SNAPSHOT_DAYS} days) × ${ASSUMED_SNAPSHOT_MIB} MiB assumed each`,
                (p) => ({ usdPerMonth: kept * snapshotGb * p.s3StandardGbMonth, basis: `${gb(kept * snapshotGb)} GB × $${p.s3StandardGbMonth}/GB-month` }),
            );
        } else {
            unpriced.push({
                item: `etcd snapshots in etcdBackupBucket ${config.etcdBackupBucket}`,
                reason: `that bucket's own lifecycle rules decide how long they stay; ${count(uploads)} uploads a month add ${gb(uploads * snapshotGb)} GB at ${ASSUMED_SNAPSHOT_MIB} MiB each`,
            });
        }
        add(`${count(uploads)} snapshot uploads a month (S3 PUT requests)`, (p) => ({
            usdPerMonth: (uploads * p.s3PutPer1000) / 1000,
            basis: `${count(uploads)} × $${p.s3PutPer1000}/1,000`,
        }));
        if (config.etcdBackupKmsKey.kind !== "sse-s3") {
            add(`${count(uploads)} KMS requests a month (a data key for each upload under SSE-KMS)`, (p) => ({
                usdPerMonth: (uploads * p.kmsRequestsPer10000) / 10_000,
                basis: `${count(uploads)} × $${p.kmsRequestsPer10000}/10,000`,
            }));
        }
    }
    if (config.etcdBackupKmsKey.kind === "kms-create") {
        add("1 KMS key for the etcd snapshots (etcdBackupKmsKey: create)", (p) => ({
            usdPerMonth: p.kmsKeyMonthly,
            basis: `$${p.kmsKeyMonthly}/month in its first year; its yearly rotation adds $${p.kmsKeyMonthly}/month after the first and the second`,
        }));
    }

    const burstable = [config.instanceType, ...(etcdNodes > 0 ? [config.etcdInstanceType] : [])].some(isBurstable);
    const excluded = [
        "data transfer: to the internet, and between zones (etcd and API traffic crosses them)",
        "load balancer capacity units beyond one per hour",
        "etcd snapshots in S3 beyond the assumed size, the snapshots taken before upgrades and membership changes, downloads for a restore; EBS snapshots",
        "CloudWatch metrics, logs and alarms",
        ...(burstable && config.cpuCredits === "unlimited"
            ? ["CPU credit surplus of burstable nodes under cpuCredits: unlimited (about $0.05 per vCPU-hour above the baseline)"]
            : []),
        "tax, free tier, Savings Plans and Reserved Instances",
    ];
    return {
        region: region ?? "unknown",
        pricesAsOf: PRICES.asOf,
        hoursPerMonth: hours,
        items: items.map((i) => ({ ...i, usdPerMonth: cents(i.usdPerMonth) })),
        unpriced,
        totalUsdPerMonth: cents(items.reduce((sum, i) => sum + i.usdPerMonth, 0)),
        excluded,
    };
}

/** The estimate as text lines, for the render's summary and the console. */
export function formatCostEstimate(estimate: CostEstimate): string[] {
    const money = (usd: number) => `$${usd.toFixed(2)}`;
    const width = Math.max(...[estimate.totalUsdPerMonth, ...estimate.items.map((i) => i.usdPerMonth)].map((u) => money(u).length));
    return [
        `monthly cost estimate (${estimate.region}, on-demand prices as of ${estimate.pricesAsOf}, ${estimate.hoursPerMonth} hours a month):`,
        ...estimate.items.map((i) => `- ${money(i.usdPerMonth).padStart(width)}  ${i.item} (${i.basis})`),
        `= ${money(estimate.totalUsdPerMonth).padStart(width)}  per month${estimate.unpriced.length > 0 ? ", not counting the unpriced items below" : ""}`,
        ...(estimate.unpriced.length > 0 ? ["not priced:", ...estimate.unpriced.map((u) => `- ${u.item}: ${u.reason}`)] : []),
        "not included:",
        ...estimate.excluded.map((e) => `- ${e}`),
    ];
}
