/** Where a request came from; any field may be missing. */
export interface GeoLocation {
  city?: string;
  region?: string;
  country?: string;
  /** ISO 3166-1 alpha-2. */
  country_code?: string;
  latitude?: number;
  longitude?: number;
}

/**
 * IP geolocation for audit events and sessions: Cloudflare's request location on Workers, a
 * MaxMind database on Node, nothing when neither is configured (events are still recorded).
 */
export interface GeoIp {
  /** The location of `ip` (or of the request, where the runtime knows it); null when unknown or excluded. */
  locate(ip: string | null | undefined, request?: Request): GeoLocation | null;
}

/** No location: the default where no GeoIP source is configured. */
export const noGeoIp: GeoIp = { locate: () => null };
