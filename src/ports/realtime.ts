/** Where a live event goes: one room per (app, channel), as on the Durable Object. */
export interface RoomAddress {
  appId: string;
  /** `gps` (every device of the app) or `gps:<device_id>`. */
  channel: string;
}

/** Fan-out of live events to the sockets of a room (Durable Object room or in-process hub). */
export interface Realtime {
  /** Resolves once the room has accepted the event for delivery. */
  publish(room: RoomAddress, event: unknown): Promise<void>;
}
