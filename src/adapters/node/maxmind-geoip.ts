import { readFile } from "node:fs/promises";
import ipaddr from "ipaddr.js";
import { type CityResponse, Reader } from "maxmind";
import type { GeoIp, GeoLocation } from "../../ports/geoip";
import type { Logger } from "../../ports/logger";

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Network<A extends Address> = [A, number];

/** Addresses that never belong to a located client; they return null without a lookup. */
const NOT_LOCATABLE = new Set<string>([
  "unspecified", // 0.0.0.0/8, ::
  "broadcast", // 255.255.255.255
  "loopback", // 127.0.0.0/8, ::1
  "private", // 10/8, 172.16/12, 192.168/16
  "carrierGradeNat", // 100.64/10: shared address space behind an ISP's NAT
  "linkLocal", // 169.254/16, fe80::/10
  "uniqueLocal", // fc00::/7
  "multicast", // 224/4, ff00::/8: never a source address
]);

const METADATA_MARKER = Buffer.from("abcdef4d61784d696e642e636f6d", "hex"); // \xAB\xCD\xEFMaxMind.com
const DECODED_RECORDS_CACHED = 10_000;

/**
 * IP geolocation from a MaxMind City database (GeoLite2-City, GeoIP2-City, or anything with the
 * same record shape), read into memory once at start-up; lookups are synchronous.
 *
 * The database must be readable and valid, or this rejects (and start-up fails) with an Error
 * naming the path.
 *
 * Privacy exclusions: with `exclusions`, the JSON file at `exclusions.path` lists addresses and
 * networks (IPv4 or IPv6, a single address or CIDR) whose lookups always return null. Two shapes
 * are accepted:
 *
 *   - an array of strings: `["203.0.113.7", "198.51.100.0/24", "2001:db8:1::/48"]`
 *   - an object: `{ "exclusions": [{ "value": "203.0.113.7", "note": "…" }, …] }` (fields other
 *     than `value` are ignored)
 *
 * IPv4-mapped IPv6 entries (`::ffff:203.0.113.7`, `::ffff:198.51.100.0/120`) are treated as the
 * IPv4 address or network they map. The file is read once, at start-up.
 *
 * Fail closed: if exclusions are configured but the file is missing, unreadable or malformed
 * (not one of the shapes above, or any entry not an address or network), one warning is logged
 * and every lookup returns null: privacy before convenience. Fix the file and restart.
 */
export async function createMaxmindGeoIp(options: {
  databasePath: string;
  exclusions?: { path: string };
  logger: Logger;
}): Promise<GeoIp> {
  const { databasePath, logger } = options;
  const reader = await openDatabase(databasePath);
  logger.info("geoip database loaded", {
    database_type: reader.metadata.databaseType,
    built_at: reader.metadata.buildEpoch.toISOString(),
  });

  let excludedV4: Network<ipaddr.IPv4>[] = [];
  let excludedV6: Network<ipaddr.IPv6>[] = [];
  if (options.exclusions) {
    const { path } = options.exclusions;
    try {
      [excludedV4, excludedV6] = parseExclusions(JSON.parse(await readFile(path, "utf8")));
    } catch (error) {
      logger.warn("geoip exclusions unavailable: every lookup returns no location", {
        path,
        error: error instanceof Error ? error.message : String(error),
      });
      return { locate: () => null };
    }
  }

  const v6Database = reader.metadata.ipVersion === 6;
  let lookupFailureLogged = false;

  return {
    locate(ip) {
      if (typeof ip !== "string" || ip === "") return null;
      try {
        let address: Address;
        try {
          address = ipaddr.process(ip); // ::ffff:a.b.c.d becomes a.b.c.d
        } catch {
          return null;
        }
        if (NOT_LOCATABLE.has(address.range())) return null;
        if (address.kind() === "ipv4") {
          const v4 = address as ipaddr.IPv4;
          for (let i = 0; i < excludedV4.length; i++) {
            if (v4.match(excludedV4[i]![0], excludedV4[i]![1])) return null;
          }
        } else {
          if (!v6Database) return null;
          const v6 = address as ipaddr.IPv6;
          for (let i = 0; i < excludedV6.length; i++) {
            if (v6.match(excludedV6[i]![0], excludedV6[i]![1])) return null;
          }
        }
        const record = reader.get(lookupKey(address, ip));
        return record ? toGeoLocation(record) : null;
      } catch (error) {
        // A corrupt database must not fail the request; say so once, not on every request.
        if (!lookupFailureLogged) {
          lookupFailureLogged = true;
          logger.warn("geoip lookup failed", {
            error: error instanceof Error ? error.message : String(error),
          });
        }
        return null;
      }
    },
  };
}

async function openDatabase(path: string): Promise<Reader<CityResponse>> {
  let buffer: Buffer;
  try {
    buffer = await readFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`GeoIP database ${path} could not be read: ${reason}`);
  }
  if (buffer[0] === 0x1f && buffer[1] === 0x8b) {
    throw new Error(`GeoIP database ${path} is gzip-compressed; decompress the .mmdb file first`);
  }
  if (buffer.lastIndexOf(METADATA_MARKER) === -1) {
    throw new Error(`GeoIP database ${path} is not a MaxMind DB file (no metadata marker)`);
  }
  try {
    const reader = new Reader<CityResponse>(buffer, {
      cache: boundedCache(DECODED_RECORDS_CACHED),
    });
    const { ipVersion, nodeCount } = reader.metadata;
    if ((ipVersion !== 4 && ipVersion !== 6) || !(Number.isInteger(nodeCount) && nodeCount > 0)) {
      throw new Error("invalid metadata");
    }
    return reader;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`GeoIP database ${path} is not a valid MaxMind DB file: ${reason}`);
  }
}

/**
 * The reader decodes a record on every lookup unless given a cache (keyed by data offset); a
 * bounded one keeps repeat lookups allocation-free. The oldest entry goes first when full.
 */
function boundedCache(max: number) {
  const entries = new Map<string | number, unknown>();
  return {
    get: (key: string | number) => entries.get(key),
    set(key: string | number, value: unknown) {
      if (entries.size >= max) entries.delete(entries.keys().next().value!);
      entries.set(key, value);
    },
  };
}

/**
 * The string the reader parses: the input itself where the reader parses it the same way (saves
 * re-serialising on the request path), else ipaddr's canonical form, without any zone id.
 */
function lookupKey(address: Address, input: string): string {
  if (address.kind() === "ipv4") {
    // ipaddr also accepts "127.1", "0x7f.0.0.1" and the like, and turns "::ffff:a.b.c.d" into v4.
    return ipaddr.IPv4.isValidFourPartDecimal(input) ? input : address.toString();
  }
  if (!input.includes("%")) return input;
  const text = address.toString();
  return text.slice(0, text.indexOf("%"));
}

function toGeoLocation(record: CityResponse): GeoLocation | null {
  const location: GeoLocation = {};
  const city = record.city?.names?.en;
  if (typeof city === "string") location.city = city;
  const region = record.subdivisions?.[0]?.names?.en;
  if (typeof region === "string") location.region = region;
  const country = record.country?.names?.en;
  if (typeof country === "string") location.country = country;
  const code = record.country?.iso_code;
  if (typeof code === "string") location.country_code = code;
  const latitude = record.location?.latitude;
  if (typeof latitude === "number" && Number.isFinite(latitude)) location.latitude = latitude;
  const longitude = record.location?.longitude;
  if (typeof longitude === "number" && Number.isFinite(longitude)) location.longitude = longitude;
  const found =
    location.city ??
    location.region ??
    location.country ??
    location.country_code ??
    location.latitude ??
    location.longitude;
  return found === undefined ? null : location;
}

/** Both accepted shapes (see createMaxmindGeoIp), split by family; throws on anything else. */
function parseExclusions(json: unknown): [Network<ipaddr.IPv4>[], Network<ipaddr.IPv6>[]] {
  let values: unknown[];
  if (Array.isArray(json)) {
    values = json;
  } else if (
    json !== null &&
    typeof json === "object" &&
    Array.isArray((json as { exclusions?: unknown }).exclusions)
  ) {
    values = (json as { exclusions: unknown[] }).exclusions.map((entry) =>
      entry !== null && typeof entry === "object" ? (entry as { value?: unknown }).value : entry,
    );
  } else {
    throw new Error('expected an array of addresses or { "exclusions": [{ "value": … }] }');
  }
  const v4: Network<ipaddr.IPv4>[] = [];
  const v6: Network<ipaddr.IPv6>[] = [];
  values.forEach((value, index) => {
    if (typeof value !== "string") throw new Error(`entry ${index} is not a string`);
    let network: Network<Address>;
    try {
      network = parseNetwork(value.trim());
    } catch {
      throw new Error(`entry ${index} is not an IP address or CIDR network`);
    }
    const [address, bits] = network;
    if (address.kind() === "ipv4") v4.push([address as ipaddr.IPv4, bits]);
    else v6.push([address as ipaddr.IPv6, bits]);
  });
  return [v4, v6];
}

function parseNetwork(value: string): Network<Address> {
  let address: Address;
  let bits: number;
  if (value.includes("/")) {
    [address, bits] = ipaddr.parseCIDR(value);
  } else {
    address = ipaddr.parse(value);
    bits = address.kind() === "ipv4" ? 32 : 128;
  }
  if (address.kind() === "ipv6" && bits >= 96) {
    const v6 = address as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return [v6.toIPv4Address(), bits - 96];
  }
  return [address, bits];
}
