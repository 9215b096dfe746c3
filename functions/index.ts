import type { Ports } from "../src/ports";
import { withDatabase } from "../src/ports/database";
import { applyRetention, sweepOfflineDevices } from "../src/services/liveness";

/** A job run on a schedule: by the Worker's cron trigger, and by a timer in the Node entry. */
export interface ScheduledJob {
  name: string;
  run(ports: Ports): Promise<void>;
}

export const scheduledJobs: ScheduledJob[] = [
  {
    name: "device-liveness",
    run: (ports) =>
      withDatabase(ports.db, async (db) => {
        const offline = await sweepOfflineDevices({ db: db(), clock: ports.clock });
        for (const { appId, events } of offline) await ports.realtime.publish(appId, events);
        if (offline.length > 0) {
          ports.logger.info("devices went offline", { count: offline.length });
        }
      }),
  },
  {
    name: "gps-retention",
    run: (ports) =>
      withDatabase(ports.db, async (db) => {
        const deleted = await applyRetention({ db: db(), clock: ports.clock });
        if (deleted > 0) ports.logger.info("positions past retention deleted", { count: deleted });
      }),
  },
];

/** Runs every job; one failing job is logged and does not stop the others. */
export async function runScheduledJobs(
  ports: Ports,
  jobs: readonly ScheduledJob[] = scheduledJobs,
) {
  const results = await Promise.allSettled(
    jobs.map(async (job) => {
      const started = performance.now();
      await job.run(ports);
      ports.logger.info("scheduled job done", {
        job: job.name,
        duration_ms: Math.round(performance.now() - started),
      });
    }),
  );
  results.forEach((result, index) => {
    if (result.status === "rejected") {
      ports.logger.error("scheduled job failed", { job: jobs[index]?.name, error: result.reason });
    }
  });
  return results.filter((result) => result.status === "rejected").length;
}
