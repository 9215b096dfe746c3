/** The current time, injectable so tests can move it. */
export interface Clock {
  now(): Date;
}
