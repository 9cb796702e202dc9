/**
 * The price table behind the monthly cost estimate (core/cost.ts): USD, on-demand, Linux, shared
 * tenancy, before tax, free tier, Savings Plans or credits. Prices change; the estimate prints
 * `asOf` so a stale table shows. To refresh a figure, read it from the pages in `sources`, or from
 * the AWS Price List API, e.g. for an instance type:
 *
 *   aws pricing get-products --region us-east-1 --service-code AmazonEC2 --filters \
 *     Type=TERM_MATCH,Field=instanceType,Value=t3.medium Type=TERM_MATCH,Field=regionCode,Value=us-east-1 \
 *     Type=TERM_MATCH,Field=operatingSystem,Value=Linux Type=TERM_MATCH,Field=tenancy,Value=Shared \
 *     Type=TERM_MATCH,Field=preInstalledSw,Value=NA Type=TERM_MATCH,Field=capacitystatus,Value=Used
 *
 * and move `asOf` to the day you checked. A region or instance type missing here is not guessed: the
 * estimate names it as unpriced.
 */

export interface RegionPrices {
    /** EC2 instance, per hour. */
    instanceHourly: Readonly<Record<string, number>>;
    /** EBS gp3 storage, per GB-month (the baseline 3,000 IOPS and 125 MB/s are included). */
    gp3GbMonth: number;
    /** Network Load Balancer, per hour. */
    nlbHourly: number;
    /** Network Load Balancer capacity unit (NLCU), per hour. */
    nlcuHourly: number;
    /** Public IPv4 address (an instance's, an Elastic IP, a load balancer node's), per hour. */
    publicIpv4Hourly: number;
    /**
     * S3 Standard storage, per GB-month (the first 50 TB a month; S3 counts a GB as 2^30 bytes). Read
     * 2026-12-03 from https://aws.amazon.com/s3/pricing/ (Storage pricing).
     */
    s3StandardGbMonth: number;
    /** S3 Standard PUT, COPY, POST and LIST requests, per 1,000. Read 2026-12-03, same page (Requests & data retrievals). */
    s3PutPer1000: number;
    /**
     * A customer managed KMS key, per month (prorated hourly). Each automatic rotation adds $1/month
     * for the first and the second rotation; later rotations are not charged. Read 2026-12-03 from
     * https://aws.amazon.com/kms/pricing/ (Key storage).
     */
    kmsKeyMonthly: number;
    /** KMS requests (GenerateDataKey, Decrypt, ...), per 10,000. Read 2026-12-03, same page (Key usage). */
    kmsRequestsPer10000: number;
}

/** S3 and KMS prices, the same in the three regions of the table. */
const S3_KMS = { s3StandardGbMonth: 0.023, s3PutPer1000: 0.005, kmsKeyMonthly: 1, kmsRequestsPer10000: 0.03 };

/** Same on-demand prices in us-east-1 and us-west-2 for every type listed. */
const US_INSTANCES = {
    "t3.small": 0.0208,
    "t3.medium": 0.0416,
    "t3.large": 0.0832,
    "t3.xlarge": 0.1664,
    "t4g.small": 0.0168,
    "t4g.medium": 0.0336,
    "t4g.large": 0.0672,
    "m5.large": 0.096,
    "m6i.large": 0.096,
    "m7i.large": 0.1008,
    "m7g.large": 0.0816,
    "c6i.large": 0.085,
};

export const PRICES = {
    asOf: "2026-11-22",
    currency: "USD",
    /** AWS bills a month of continuous use as 730 hours (8,760 hours a year / 12). */
    hoursPerMonth: 730,
    sources: [
        "https://aws.amazon.com/ec2/pricing/on-demand/",
        "https://aws.amazon.com/ebs/pricing/",
        "https://aws.amazon.com/elasticloadbalancing/pricing/",
        "https://aws.amazon.com/vpc/pricing/",
        "https://aws.amazon.com/s3/pricing/",
        "https://aws.amazon.com/kms/pricing/",
    ],
    regions: {
        "us-east-1": { instanceHourly: US_INSTANCES, gp3GbMonth: 0.08, nlbHourly: 0.0225, nlcuHourly: 0.006, publicIpv4Hourly: 0.005, ...S3_KMS },
        "us-west-2": { instanceHourly: US_INSTANCES, gp3GbMonth: 0.08, nlbHourly: 0.0225, nlcuHourly: 0.006, publicIpv4Hourly: 0.005, ...S3_KMS },
        "eu-west-1": {
            instanceHourly: {
                "t3.small": 0.0228,
                "t3.medium": 0.0456,
                "t3.large": 0.0912,
                "t3.xlarge": 0.1824,
                "t4g.small": 0.0184,
                "t4g.medium": 0.0368,
                "t4g.large": 0.0736,
                "m5.large": 0.107,
                "m6i.large": 0.107,
                "m7i.large": 0.11235,
                "m7g.large": 0.091,
                "c6i.large": 0.096,
            },
            gp3GbMonth: 0.088,
            nlbHourly: 0.0252,
            nlcuHourly: 0.006,
            publicIpv4Hourly: 0.005,
            ...S3_KMS,
        },
    } as Readonly<Record<string, RegionPrices>>,
} as const;
