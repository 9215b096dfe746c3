/** `resource:action`, each part a name or `*` (e.g. `gps:read`, `gps:*`, `*:*`). */
export const PERMISSION_PATTERN = /^(\*|[a-z][a-z0-9_-]{0,63}):(\*|[a-z][a-z0-9_.-]{0,63})$/;
