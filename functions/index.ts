import type { Ports } from "../src/ports";

/** A job run on a schedule: by the Worker's cron trigger, and by a timer in the Node entry. */
export interface ScheduledJob {
  name: string;
  run(ports: Ports): Promise<void>;
}

/**
 * Jobs of later capabilities register here (GPS retention, device liveness, key rotation);
 * the foundation has none of its own yet.
 */
export const scheduledJobs: ScheduledJob[] = [];

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
