/** A live event as the rooms send it to sockets subscribed to its channel. */
export interface LiveEvent {
  type: "Position" | "DeviceStatus";
  /** `gps` (every device of the app) or `gps:<device_id>`. */
  channel: string;
  data: unknown;
}

/**
 * Fan-out of an app's live events to the sockets subscribed to their channels: the app's
 * Durable Object room on Workers, the in-process hub on Node.
 */
export interface Realtime {
  /** Resolves once the room has accepted the events for delivery (not once delivered). */
  publish(appId: string, events: readonly LiveEvent[]): Promise<void>;
  /**
   * The app's events on `channel` from now on, until `signal` aborts; a consumer that falls
   * behind loses the oldest events, never slows the room. For server-side subscribers
   * (GraphQL subscriptions), who have checked the caller's grants themselves.
   */
  subscribe(appId: string, channel: string, signal: AbortSignal): AsyncIterable<LiveEvent>;
}
