import type { MiddlewareHandler } from "hono";
import { devMailboxEnabled } from "./config";
import { workRunsOn } from "./http/after-response";
import { allowedMethodsOf } from "./http/allowed-methods";
import type { AppEnv } from "./http/app-env";
import { handleError, notFoundHandler } from "./http/error-handler";
import { createRouter } from "./http/router";
import { bodyChecks, requestGate, requestSetup } from "./middleware/pipeline";
import { rateLimiting } from "./middleware/rate-limit";
import type { Ports } from "./ports";
import { accountRouter } from "./routes/account/account.index";
import { passwordPagesRouter } from "./routes/account-pages/password-pages";
import { signupPagesRouter } from "./routes/account-pages/signup-pages";
import { apiKeysRouter } from "./routes/api-keys/api-keys.index";
import { appSettingsRouter, appsRouter } from "./routes/apps/apps.index";
import { auditRouter } from "./routes/audit/audit.index";
import { auditReportsRouter } from "./routes/audit-reports/audit-reports.index";
import { bansRouter } from "./routes/bans/bans.index";
import { consoleRouter } from "./routes/console/console.index";
import { credentialsRouter } from "./routes/credentials/credentials.index";
import { devMailboxRouter } from "./routes/dev-mailbox/dev-mailbox.index";
import { devicesRouter } from "./routes/devices/devices.index";
import { discoveryRouter } from "./routes/discovery/discovery.index";
import { registerDocs } from "./routes/docs/docs.index";
import { emailCodesRouter } from "./routes/email-codes/email-codes.index";
import { gpsRouter } from "./routes/gps/gps.index";
import { createGraphqlRouter } from "./routes/graphql/graphql.index";
import { healthRouter } from "./routes/health/health.index";
import { indexRouter } from "./routes/index/index.index";
import { inviteAcceptRouter, invitesRouter } from "./routes/invites/invites.index";
import { liveRouter } from "./routes/live/live.index";
import { mfaRouter } from "./routes/mfa/mfa.index";
import { authorizeRouter } from "./routes/oauth/authorize.index";
import { oauthClientsRouter } from "./routes/oauth/oauth-clients.index";
import { passwordsRouter } from "./routes/passwords/passwords.index";
import { platformLoginRouter, platformsRouter } from "./routes/platforms/platforms.index";
import { rolesRouter } from "./routes/roles/roles.index";
import { signupRouter } from "./routes/signup/signup.index";
import { tokensRouter } from "./routes/tokens/tokens.index";
import { meRouter, usersRouter } from "./routes/users/users.index";
import { createServices, type Services } from "./services/context";

/**
 * The Heimdall app: one Hono app for every runtime. It gets the outside world as `ports` and
 * imports no runtime; `src/node.ts` and `src/worker.ts` build the ports and serve it.
 * `consoleAssets` serves the browser console's build (console/) for GET requests no route
 * answers; the Node entry passes one, while Workers serve it as static assets before the app.
 *
 * @example
 * const app = createApp(ports);
 * const res = await app.request("/health");
 */
export function createApp(
  ports: Ports,
  options: {
    consoleAssets?: MiddlewareHandler<AppEnv>;
    /** Built from `ports` unless the entry shares them with something else (the Node live hub). */
    services?: Services;
  } = {},
) {
  const { config } = ports;
  const services = options.services ?? createServices(ports);
  const app = createRouter();

  app.use(requestSetup(ports, services));
  app.use(requestGate(ports, services));
  app.use(rateLimiting(ports));
  app.use(bodyChecks(config.MAX_BODY_BYTES));

  app.route("/", healthRouter);
  app.route("/v1", healthRouter);
  app.route("/v1", indexRouter);
  app.route("/v1", appsRouter);
  app.route("/v1", bansRouter);
  app.route("/v1", tokensRouter);
  app.route("/v1", passwordsRouter);
  app.route("/v1", emailCodesRouter);
  app.route("/v1", passwordPagesRouter);
  app.route("/v1", discoveryRouter);
  app.route("/v1", gpsRouter);
  app.route("/v1", liveRouter);
  app.route("/v1", createGraphqlRouter(ports));
  app.route("/v1", meRouter);
  app.route("/v1", mfaRouter);
  app.route("/v1", accountRouter);
  app.route("/v1", auditReportsRouter);
  app.route("/v1", authorizeRouter);
  app.route("/v1", platformLoginRouter);
  // One handler, two mounts: the platform admin under /v1/apps/:app_name, the app's own users
  // (scoped to their token's app) at the top level. `guard()` tells them apart.
  const scoped = [
    usersRouter,
    rolesRouter,
    appSettingsRouter,
    auditRouter,
    apiKeysRouter,
    devicesRouter,
    platformsRouter,
    oauthClientsRouter,
  ];
  for (const router of scoped) {
    app.route("/v1/apps/:app_name", router);
    app.route("/v1", router);
  }
  // Service credentials and invites are the platform admin's.
  app.route("/v1/apps/:app_name", credentialsRouter);
  app.route("/v1/apps/:app_name", invitesRouter);
  app.route("/v1", inviteAcceptRouter);
  app.route("/v1", signupRouter);
  app.route("/v1", signupPagesRouter);
  app.route("/v1", consoleRouter);
  // Shows every user's mail to whoever asks: a development tool, absent unless turned on.
  if (devMailboxEnabled(config)) app.route("/v1", devMailboxRouter);
  registerDocs(app);
  // `use`, not `get("*")`: a route would make every path answer GET in the 405 `Allow` lists.
  if (options.consoleAssets) app.use(options.consoleAssets);

  app.notFound(notFoundHandler(allowedMethodsOf(() => app.routes)));
  app.onError(handleError);
  // Every request has an execution context: the runtime's (Workers), or one whose work runs on.
  const dispatch = app.fetch;
  app.fetch = (request, env, executionCtx = workRunsOn) => dispatch(request, env, executionCtx);
  return app;
}

export type App = ReturnType<typeof createApp>;
