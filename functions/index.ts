import type { DatabasePort } from "../src/ports";
import { withDatabase } from "../src/ports/database";
import { type ServiceContext, type Services, systemContext } from "../src/services/context";
import { deliverDueEmail } from "../src/services/email-delivery";
import { applyRetention, sweepOfflineDevices } from "../src/services/liveness";

/** A job run on a schedule: by the Worker's cron trigger, and by a timer in the Node entry. */
export interface ScheduledJob {
  name: string;
  run(ctx: ServiceContext): Promise<void>;
}

export const scheduledJobs: ScheduledJob[] = [
  {
    name: "device-liveness",
    run: async (ctx) => {
      const offline = await sweepOfflineDevices(ctx);
      for (const { appId, events } of offline) await ctx.realtime.publish(appId, events);
      if (offline.length > 0) ctx.logger.info("devices went offline", { count: offline.length });
    },
  },
  {
    name: "gps-retention",
    run: async (ctx) => {
      const deleted = await applyRetention(ctx);
      if (deleted > 0) ctx.logger.info("positions past retention deleted", { count: deleted });
    },
  },
  {
    // Mail the request that queued it could not hand over (a failure, a lost isolate), and retries.
    name: "email-delivery",
    run: async (ctx) => {
      const report = await deliverDueEmail(ctx);
      if (report.sent + report.failed + report.retried > 0) {
        ctx.logger.info("outbox delivered", { ...report });
      }
    },
  },
];

/**
 * Runs every job, each in a system context whose database session is opened on first use and
 * released after the job; one failing job is logged and does not stop the others.
 */
export async function runScheduledJobs(
  services: Services,
  database: DatabasePort,
  jobs: readonly ScheduledJob[] = scheduledJobs,
) {
  const { logger } = services;
  const results = await Promise.allSettled(
    jobs.map(async (job) => {
      const started = performance.now();
      await withDatabase(database, (db) => job.run(systemContext(services, db)));
      logger.info("scheduled job done", {
        job: job.name,
        duration_ms: Math.round(performance.now() - started),
      });
    }),
  );
  results.forEach((result, index) => {
    if (result.status === "rejected") {
      logger.error("scheduled job failed", { job: jobs[index]?.name, error: result.reason });
    }
  });
  return results.filter((result) => result.status === "rejected").length;
}
