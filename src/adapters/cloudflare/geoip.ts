import type { GeoIp, GeoLocation } from "../../ports/geoip";

/**
 * The location fields of Cloudflare's `request.cf` (IncomingRequestCfProperties), typed loosely
 * here so the adapter also compiles where the Workers types are absent (tests run on Node) and
 * copes with whatever the object actually holds.
 */
interface CfLocation {
  city?: unknown;
  region?: unknown;
  /** ISO 3166-1 alpha-2, or "T1" for Tor (and "XX" when unknown). */
  country?: unknown;
  /** Degrees, as a string. */
  latitude?: unknown;
  longitude?: unknown;
}

/** Country values Cloudflare sends that are not ISO 3166-1 codes. */
const NOT_A_COUNTRY = new Set(["T1", "XX"]);

/**
 * IP geolocation on Workers: the location Cloudflare attaches to each incoming request. The `ip`
 * argument is ignored (Cloudflare has already located the connecting client). `country` stays
 * absent: `cf` carries only the code, in `country_code`.
 */
export const cloudflareGeoIp: GeoIp = {
  locate(_ip, request) {
    const cf = (request as { cf?: CfLocation | null } | undefined)?.cf;
    if (typeof cf !== "object" || cf === null) return null;
    const location: GeoLocation = {};
    if (isText(cf.city)) location.city = cf.city;
    if (isText(cf.region)) location.region = cf.region;
    if (isText(cf.country) && !NOT_A_COUNTRY.has(cf.country)) location.country_code = cf.country;
    const latitude = toNumber(cf.latitude);
    if (latitude !== undefined) location.latitude = latitude;
    const longitude = toNumber(cf.longitude);
    if (longitude !== undefined) location.longitude = longitude;
    const found =
      location.city ??
      location.region ??
      location.country_code ??
      location.latitude ??
      location.longitude;
    return found === undefined ? null : location;
  },
};

const isText = (value: unknown): value is string => typeof value === "string" && value !== "";

function toNumber(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value !== "string" || value.trim() === "") return undefined;
  const number = Number(value);
  return Number.isFinite(number) ? number : undefined;
}
