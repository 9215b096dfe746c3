import DataLoader from "dataloader";
import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from "graphql";

import type { Context } from "hono";
import { type ZodType, z } from "zod";
import {
  AssignRoleSchema,
  CreateApiKeySchema,
  CreateDeviceSchema,
  CreateRoleSchema,
  CreateUserSchema,
  UpdateDeviceSchema,
  UpdateRoleSchema,
  UpdateUserSchema,
} from "../../db/schema";
import { EmailChangeSchema } from "../../db/schema/signup";
import type { AppEnv } from "../../http/app-env";
import { deliverEmailAfterResponse } from "../../http/email-dispatch";
import { HistoryQuery } from "../../http/history-query";
import { issuerBase } from "../../http/links";
import { publishAfterResponse } from "../../http/live-publish";
import { PaginationQuery } from "../../http/pagination";
import { ApiError } from "../../lib/errors";
import type { TokenRevocationQuery } from "../../ports";
import * as apiKeys from "../../services/api-keys";
import { type AppRecord, findAppById } from "../../services/apps";
import { listAudit } from "../../services/audit";
import * as devices from "../../services/devices";
import { requestEmailChange } from "../../services/email-address";
import { assertSomeAccepted, ingestPoints } from "../../services/ingest";
import { changePassword } from "../../services/password-recovery";
import * as positions from "../../services/positions";
import { checkRevoked } from "../../services/revocation-status";
import * as roles from "../../services/roles";
import {
  type AppSubject,
  assertAppCaller,
  revocationOf,
  type Subject,
} from "../../services/subject";
import * as users from "../../services/users";

/** What every resolver gets: the Hono context of the request (authenticated) and its loaders. */
export interface GraphQLContext {
  hono: Context<AppEnv>;
  app(): Promise<AppRecord>;
  loaders: ReturnType<typeof createLoaders>;
}

/** Per request: the caller's app, read once; batched lookups so lists make no N+1 queries. */
export function createContext(hono: Context<AppEnv>): Omit<GraphQLContext, "hono"> {
  let app: Promise<AppRecord> | undefined;
  const appOf = () => {
    const subject = hono.get("subject");
    if (!subject || subject.kind === "admin") throw new Error("no app caller");
    app ??= findAppById(hono.var.services, subject.appId);
    return app;
  };
  return { app: appOf, loaders: createLoaders(hono, appOf) };
}

function createLoaders(hono: Context<AppEnv>, app: () => Promise<AppRecord>) {
  return {
    currentPosition: new DataLoader(async (ids: readonly string[]) => {
      const latest = await positions.currentPositions(hono.var.services, (await app()).id, ids);
      const byDevice = new Map(latest.map((p) => [p.device_id, p]));
      return ids.map((id) => byDevice.get(id) ?? null);
    }),
    device: new DataLoader(async (ids: readonly string[]) => {
      const rows = await devices.devicesByIds(hono.var.services, (await app()).id, [...ids]);
      const byId = new Map(rows.map((d) => [d.id, devices.deviceView(d)]));
      return ids.map((id) => byId.get(id) ?? new ApiError("not_found", "No such device"));
    }),
  };
}

/** The caller, checked as REST checks it: an app's caller with `permission`. */
async function scoped(ctx: GraphQLContext, permission?: string) {
  const subject = ctx.hono.get("subject") as Subject;
  assertAppCaller(subject, permission);
  const app = await ctx.app();
  const service = ctx.hono.var.services;
  return { app, subject, service };
}

/** `tokensIssued24h` → `tokens_issued_24h`: GraphQL's names onto the rows' columns. */
export const snakeCase = (name: string) => name.replace(/([A-Z]|\d+)/g, "_$1").toLowerCase();
const camelCase = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Input in GraphQL's camelCase through REST's own schema, so both validate alike. */
function parseInput<T>(schema: ZodType<T>, input: Record<string, unknown>, argument = "input"): T {
  const snake = Object.fromEntries(
    Object.entries(input)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => [snakeCase(key), value]),
  );
  const parsed = schema.safeParse(snake);
  if (parsed.success) return parsed.data;
  throw new ApiError("validation_error", "The input did not pass validation", {
    details: parsed.error.issues.map((issue) => ({
      field: [argument, ...issue.path.map((p) => camelCase(String(p)))].join("."),
      reason: issue.message,
    })),
  });
}

const page = (args: { limit?: number; offset?: number }) =>
  parseInput(PaginationQuery, { limit: args.limit, offset: args.offset }, "pagination");

function pageOf<T>(data: T[], total: number, { limit, offset }: { limit: number; offset: number }) {
  return { data, pagination: { total, limit, offset, hasMore: offset + data.length < total } };
}

const dateTime = new GraphQLScalarType({
  name: "DateTime",
  description: "An ISO 8601 date-time, e.g. 2026-02-20T10:00:00.000Z.",
  serialize: (value) => (value instanceof Date ? value.toISOString() : String(value)),
  parseValue: (value) => parseDateTime(value),
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : undefined, ast),
});

/** What REST accepts as a date-time (`Date.parse` takes `+275760-…`, Postgres does not). */
const isoDateTime = z.iso.datetime({ offset: true });

/** A GraphQLError, as the built-in scalars throw: the caller's mistake, not a failure to log. */
function parseDateTime(value: unknown, node?: ValueNode) {
  if (!isoDateTime.safeParse(value).success) {
    throw new GraphQLError("DateTime is an ISO 8601 date-time, e.g. 2026-02-20T10:00:00.000Z", {
      nodes: node,
    });
  }
  return value as string;
}

const json = new GraphQLScalarType({
  name: "JSON",
  description: "Any JSON value (metadata, attributes).",
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: function literal(ast: ValueNode): unknown {
    switch (ast.kind) {
      case Kind.STRING:
      case Kind.BOOLEAN:
        return ast.value;
      case Kind.INT:
      case Kind.FLOAT:
        return Number(ast.value);
      case Kind.LIST:
        return ast.values.map(literal);
      case Kind.OBJECT:
        return Object.fromEntries(ast.fields.map((f) => [f.name.value, literal(f.value)]));
      default:
        return null;
    }
  },
});

type Args = Record<string, unknown> & { limit?: number; offset?: number };
type Resolver = (parent: never, args: Args, ctx: GraphQLContext) => unknown;

const query: Record<string, Resolver> = {
  me: (_parent, _args, ctx) => {
    const subject = ctx.hono.get("subject") as Subject;
    if (subject.kind === "admin") {
      return { userId: null, apiKeyId: null, roles: [], permissions: ["*:*"], isSuperAdmin: true };
    }
    assertAppCaller(subject);
    return {
      userId: subject.kind === "user" ? subject.userId : null,
      apiKeyId: subject.kind === "api_key" ? subject.keyId : null,
      roles: subject.roles,
      permissions: subject.permissions,
      isSuperAdmin: subject.permissions.includes("*:*"),
    };
  },
  app: async (_parent, _args, ctx) => (await scoped(ctx)).app,
  users: async (_parent, args, ctx) => {
    const { service, app } = await scoped(ctx, "users:read");
    const p = page(args);
    const { data, total } = await users.listUsers(service, app.id, p, {
      status: args.status as "active" | "deactivated" | undefined,
      email: args.email as string | undefined,
    });
    return pageOf(data, total, p);
  },
  user: async (_parent, args, ctx) => {
    const { service, app } = await scoped(ctx, "users:read");
    return users.findUser(service, app.id, String(args.id));
  },
  roles: async (_parent, args, ctx) => {
    const { service, app } = await scoped(ctx, "roles:read");
    const p = page(args);
    const { data, total } = await roles.listRoles(service, app.id, p);
    return pageOf(data, total, p);
  },
  role: async (_parent, args, ctx) => {
    const { service, app } = await scoped(ctx, "roles:read");
    return roles.findRole(service, app.id, String(args.name));
  },
  apiKeys: async (_parent, args, ctx) => {
    const { service, app } = await scoped(ctx, "api-keys:read");
    const p = page(args);
    const { data, total } = await apiKeys.listApiKeys(service, app.id, p);
    return pageOf(data, total, p);
  },
  devices: async (_parent, args, ctx) => {
    const { service, app } = await scoped(ctx, "devices:read");
    const p = page(args);
    const { data, total } = await devices.listDevices(service, app.id, p);
    return pageOf(data, total, p);
  },
  device: async (_parent, args, ctx) => {
    const { service, app } = await scoped(ctx, "devices:read");
    return devices.deviceView(await devices.findDevice(service, app.id, String(args.id)));
  },
  currentPositions: async (_parent, _args, ctx) => {
    const { service, app } = await scoped(ctx, "gps:read");
    return positions.currentPositions(service, app.id);
  },
  positions: async (_parent, args, ctx) => {
    const { service, app } = await scoped(ctx, "gps:read");
    const { device_id, from, to, bbox, ...p } = parseInput(HistoryQuery, args, "args");
    const { data, total } = await positions.listPositions(
      service,
      app.id,
      { deviceId: device_id, from, to, bbox },
      p,
    );
    return pageOf(data, total, p);
  },
  position: async (_parent, args, ctx) => {
    const { service, app } = await scoped(ctx, "gps:read");
    return positions.findPosition(service, app.id, String(args.id));
  },
  auditLogs: async (_parent, args, ctx) => {
    const { service, app } = await scoped(ctx, "audit:read");
    const p = page(args);
    const { rows, total } = await listAudit(
      service,
      app.id,
      {
        action: args.action as string | undefined,
        actor_id: args.actorId as string | undefined,
        target_id: args.targetId as string | undefined,
        from: args.from ? new Date(String(args.from)) : undefined,
        to: args.to ? new Date(String(args.to)) : undefined,
      },
      p,
    );
    return pageOf(rows, total, p);
  },
  stats: async (_parent, _args, ctx) => {
    const { service, app } = await scoped(ctx, "stats:read");
    return positions.appStats(service, app.id);
  },
};

const input = (args: Args) => (args.input ?? {}) as Record<string, unknown>;

const mutation: Record<string, Resolver> = {
  createUser: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "users:write");
    const body = parseInput(CreateUserSchema, input(args));
    return users.createUser(service, app, body);
  },
  updateUser: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "users:write");
    const changes = parseInput(UpdateUserSchema, input(args));
    return users.updateUser(service, app, String(args.id), changes);
  },
  deactivateUser: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "users:delete");
    return users.updateUser(service, app, String(args.id), {
      status: "deactivated",
    });
  },
  assignRole: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "users:write");
    const { role } = parseInput(AssignRoleSchema, { role: args.role }, "role");
    return users.assignRole(service, app, String(args.userId), role);
  },
  removeRole: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "users:write");
    return users.removeRole(service, app, String(args.userId), String(args.role));
  },
  createRole: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "roles:write");
    return roles.createRole(service, app, parseInput(CreateRoleSchema, input(args)));
  },
  updateRole: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "roles:write");
    const changes = parseInput(UpdateRoleSchema, input(args));
    return roles.updateRole(service, app, String(args.name), changes);
  },
  deleteRole: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "roles:delete");
    await roles.deleteRole(service, app, String(args.name));
    return true;
  },
  createApiKey: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "api-keys:write");
    const { key, ...apiKey } = await apiKeys.createApiKey(
      service,
      app,
      parseInput(CreateApiKeySchema, input(args)),
    );
    return { apiKey, key };
  },
  revokeApiKey: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "api-keys:delete");
    return apiKeys.revokeApiKey(service, app, String(args.id));
  },
  createDevice: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "devices:write");
    const { secret, ...device } = await devices.createDevice(
      service,
      app,
      parseInput(CreateDeviceSchema, input(args)),
    );
    return { device, secret };
  },
  updateDevice: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "devices:write");
    const changes = parseInput(UpdateDeviceSchema, input(args));
    return devices.updateDevice(service, app, String(args.id), changes);
  },
  rotateDeviceSecret: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "devices:write");
    const { secret, ...device } = await devices.rotateDeviceSecret(service, app, String(args.id));
    return { device, secret };
  },
  deleteDevice: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "devices:delete");
    await devices.deleteDevice(service, app, String(args.id));
    return true;
  },
  changeEmail: async (_parent, args, ctx) => {
    const { app, subject, service } = await scoped(ctx);
    if (subject.kind !== "user") {
      throw new ApiError("forbidden", "Only a user signed in with a password has this");
    }
    const body = parseInput(EmailChangeSchema, { email: args.email, password: args.password });
    deliverEmailAfterResponse(
      ctx.hono,
      await requestEmailChange(service, app, subject.userId, body, issuerBase(ctx.hono)),
    );
    return "verification_sent";
  },
  postPositions: async (_parent, args, ctx) => {
    const { app, service } = await scoped(ctx, "gps:write");
    const points = (args.points as Array<Record<string, unknown>>).map((point) =>
      Object.fromEntries(
        Object.entries(point)
          .filter(([, value]) => value !== null && value !== undefined)
          .map(([key, value]) => [snakeCase(key), value]),
      ),
    );
    if (points.length > 1000) {
      throw new ApiError("validation_error", "At most 1,000 points per request", {
        details: [{ field: "points", reason: "at most 1000 items" }],
      });
    }
    const result = await ingestPoints(service, { appId: app.id }, points);
    assertSomeAccepted(result, points.length);
    publishAfterResponse(ctx.hono, app.id, result.events);
    return {
      stored: result.stored.length,
      duplicates: result.duplicates,
      rejected: result.rejected,
      positions: result.stored,
    };
  },
  changePassword: async (_parent, args, ctx) => {
    const { app, service, subject } = await scoped(ctx);
    if (subject.kind !== "user") {
      throw new ApiError("forbidden", "Only a signed-in user has a password to change");
    }
    const { current_password, new_password } = parseInput(
      ChangePasswordArgs,
      { currentPassword: args.currentPassword, newPassword: args.newPassword },
      "changePassword",
    );
    const mail = await changePassword(
      service,
      app,
      { userId: subject.userId, sessionId: subject.claims.sid },
      { current_password, new_password },
      { current: "currentPassword", next: "newPassword" },
    );
    deliverEmailAfterResponse(ctx.hono, mail);
    return true;
  },
};

const ChangePasswordArgs = z.object({
  current_password: z.string().min(1).max(1024),
  new_password: z.string().min(1).max(1024),
});

export const resolvers = {
  DateTime: dateTime,
  JSON: json,
  Query: query,
  Mutation: mutation,
  Device: {
    currentPosition: async (device: { id: string }, _args: Args, ctx: GraphQLContext) => {
      await scoped(ctx, "gps:read");
      return ctx.loaders.currentPosition.load(device.id);
    },
  },
  Position: {
    device: async (position: { device_id: string }, _args: Args, ctx: GraphQLContext) => {
      await scoped(ctx, "devices:read");
      return ctx.loaders.device.load(position.device_id);
    },
  },
  Subscription: {
    positions: {
      subscribe: async (_parent: never, args: Args, ctx: GraphQLContext) => {
        const { service, app, subject } = await scoped(ctx, "gps:read");
        const deviceId = args.deviceId as string | undefined;
        if (deviceId) await devices.findDevice(service, app.id, deviceId);
        const channel = deviceId ? `gps:${deviceId}` : "gps";
        const watch = watchRevocation(ctx.hono.req.raw.signal, {
          query: revocationOf(subject as AppSubject, service.clock.now()),
          isRevoked: (query) => checkRevoked(service.revocations, query),
          everyMs: service.config.LIVE_SWEEP_SECONDS * 1000,
        });
        const events = service.realtime.subscribe(app.id, channel, watch.signal);
        return onlyPositions(events, watch);
      },
      resolve: (position: unknown) => position,
    },
  },
};

/**
 * Ends a subscription when its request does, or when a check every `everyMs` (the live rooms'
 * sweep interval) finds the caller's credential revoked since it started. A check that cannot
 * reach the store ends it too: revocation fails closed.
 */
function watchRevocation(
  request: AbortSignal,
  options: {
    query: TokenRevocationQuery;
    isRevoked(query: TokenRevocationQuery): Promise<boolean>;
    everyMs: number;
  },
) {
  const controller = new AbortController();
  const watch = { signal: controller.signal, revoked: false };
  const timer = setInterval(() => {
    options.isRevoked(options.query).then(
      (revoked) => {
        if (!revoked) return;
        watch.revoked = true;
        controller.abort();
      },
      () => controller.abort(),
    );
  }, options.everyMs);
  controller.signal.addEventListener("abort", () => clearInterval(timer));
  if (request.aborted) controller.abort();
  request.addEventListener("abort", () => controller.abort());
  return watch;
}

async function* onlyPositions(
  events: AsyncIterable<{ type: string; data: unknown }>,
  watch: { revoked: boolean },
) {
  for await (const event of events) if (event.type === "Position") yield event.data;
  if (watch.revoked) throw new ApiError("unauthorized", "The credential was revoked");
}
