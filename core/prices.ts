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
}

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
    ],
    regions: {
        "us-east-1": { instanceHourly: US_INSTANCES, gp3GbMonth: 0.08, nlbHourly: 0.0225, nlcuHourly: 0.006, publicIpv4Hourly: 0.005 },
        "us-west-2": { instanceHourly: US_INSTANCES, gp3GbMonth: 0.08, nlbHourly: 0.0225, nlcuHourly: 0.006, publicIpv4Hourly: 0.005 },
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
        },
    } as Readonly<Record<string, RegionPrices>>,
} as const;
