import type { Command } from '../command.js';
import { catalogCommand } from './catalog.js';
import { consoleCommand } from './console.js';
import { auditCommand } from './audit.js';
import { dlqDiscardCommand, dlqRetryCommand } from './dlq-action.js';
import { dlqListCommand } from './dlq-list.js';
import { dlqShowCommand } from './dlq-show.js';
import { migrateCommand } from './migrate.js';
import { outboxStatusCommand } from './outbox-status.js';
import { pruneCommand } from './prune.js';
import { replayCommand } from './replay.js';
import { statsCommand } from './stats.js';

/** Every command, in the order `eventbus --help` lists them. */
export const COMMANDS: readonly Command[] = [
  migrateCommand,
  replayCommand,
  dlqListCommand,
  dlqShowCommand,
  dlqRetryCommand,
  dlqDiscardCommand,
  outboxStatusCommand,
  statsCommand,
  pruneCommand,
  consoleCommand,
  auditCommand,
  catalogCommand,
];
