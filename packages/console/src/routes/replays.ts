import type { Hono } from 'hono';
import { invalidConfig } from '@eventbus/core';
import type { ReplayJobs } from '../replay-jobs.js';
import { replayRequest } from '../request-input.js';

/** The replay API: a dry-run count, start at a rate, follow, stop; through @eventbus/replay's republishEvents. */
export function replayRoutes(app: Hono, jobs: ReplayJobs): void {
  app.post('/api/replays/dry-run', async (c) => {
    const { filter, target } = replayRequest(await c.req.json().catch(() => null));
    return c.json({ total: await jobs.dryRun(filter, target) });
  });
  app.post('/api/replays', async (c) => {
    const { filter, target, ratePerSecond } = replayRequest(await c.req.json().catch(() => null));
    if (ratePerSecond === undefined) throw invalidConfig('rate', 'events per second: a replay from the console always has a rate', 'nothing');
    return c.json(jobs.start(filter, target, ratePerSecond), 202);
  });
  app.get('/api/replays', (c) => c.json(jobs.list()));
  app.post('/api/replays/:id/stop', (c) => (jobs.stop(c.req.param('id')) ? c.json({ stopping: true }) : c.json({ error: 'no such replay' }, 404)));
}
