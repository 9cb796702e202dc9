/**
 * IPv4 CIDR maths. Parsing and formatting come from `ip-address`; the arithmetic on top of it is
 * plain BigInt so every function here is total and easy to property-test.
 */
import { Address4 } from "ip-address";

export interface Cidr {
    /** Network address as an integer. */
    readonly base: bigint;
    readonly prefix: number;
}

/** Parses `a.b.c.d/n`; returns a reason instead of throwing so callers can name the config key. */
export function parseCidr(text: string): Cidr | { error: string } {
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(text) || !Address4.isValid(text)) {
        return { error: "is not an IPv4 CIDR block such as 10.0.0.0/16" };
    }
    const address = new Address4(text);
    if (address.subnetMask > 32) {
        return { error: "has a prefix longer than /32" };
    }
    const network = address.startAddress();
    if (address.bigInt() !== network.bigInt()) {
        return { error: `has host bits set (the network is ${network.correctForm()}/${address.subnetMask})` };
    }
    return { base: network.bigInt(), prefix: address.subnetMask };
}

export function isCidr(value: Cidr | { error: string }): value is Cidr {
    return (value as Cidr).base !== undefined;
}

export function formatCidr(cidr: Cidr): string {
    return `${addressAt(cidr, 0n)}/${cidr.prefix}`;
}

export function size(cidr: Cidr): bigint {
    return 1n << BigInt(32 - cidr.prefix);
}

/** The address `offset` places after the network address, dotted-quad. */
export function addressAt(cidr: Cidr, offset: bigint): string {
    if (offset < 0n || offset >= size(cidr)) {
        throw new RangeError(`offset ${offset} is outside ${cidr.prefix}-bit block`);
    }
    return Address4.fromBigInt(cidr.base + offset).correctForm();
}

export function overlaps(a: Cidr, b: Cidr): boolean {
    return a.base < b.base + size(b) && b.base < a.base + size(a);
}

/**
 * Splits `parent` into `count` equal, non-overlapping subnets of `newPrefix` bits, in address order.
 */
export function subdivide(parent: Cidr, newPrefix: number, count: number): Cidr[] {
    if (newPrefix < parent.prefix || newPrefix > 32) {
        throw new RangeError(`cannot cut /${newPrefix} subnets out of a /${parent.prefix}`);
    }
    const available = 1n << BigInt(newPrefix - parent.prefix);
    if (BigInt(count) > available) {
        throw new RangeError(`a /${parent.prefix} holds only ${available} /${newPrefix} subnets, not ${count}`);
    }
    const step = 1n << BigInt(32 - newPrefix);
    return Array.from({ length: count }, (_, i) => ({ base: parent.base + BigInt(i) * step, prefix: newPrefix }));
}

/**
 * Each block once, in first-seen order, compared in canonical form: a security group refuses a rule
 * that repeats another's protocol, ports and source.
 */
export function uniqueCidrs(blocks: readonly string[]): string[] {
    const seen = new Set<string>();
    return blocks.flatMap((block) => {
        const parsed = parseCidr(block);
        const canonical = isCidr(parsed) ? formatCidr(parsed) : block;
        if (seen.has(canonical)) return [];
        seen.add(canonical);
        return [canonical];
    });
}

/** A block as a resource-name part: 203.0.113.7/32 → 203-0-113-7-32. */
export function cidrNamePart(block: string): string {
    return block.replace(/[./]/g, "-");
}
