export { DlqMirror, DEFAULT_UNSTORABLE_ATTEMPTS, type DlqMirrorOptions } from './dlq-mirror.js';
export { consumerDedupeKey, isRecordError, mirrorDeadLetter, skipUnstorable, type MirrorOutcome } from './sql/mirror-dead-letter.js';
export { RECORD_RELAY_DEAD_LETTERS_SQL, recordRelayDeadLetters, type RelayDeadLetter } from './sql/record-relay-dead-letter.js';
export { redriveDeadLetter, discardDeadLetter, type DeadLetterActionResult } from './dead-letter-admin.js';
export {
  listDeadLetters,
  showDeadLetter,
  countDeadLetteredEvents,
  type DeadLetterFilter,
  type DeadLetterSummary,
  type DeadLetterDetail,
  type DeadLetterBytes,
} from './sql/dead-letter-queries.js';
export {
  deadLetterCounts,
  deadLetterStatusCounts,
  pendingDeadLetters,
  type DeadLetterCount,
  type DeadLetterStatusCounts,
  type PendingDeadLetters,
} from './sql/dead-letter-counts.js';
export { countOldDeadLetters, deleteOldDeadLetters, PENDING_RELAY_DEAD_LETTER_OF_EVENT, type OldDeadLetterCounts } from './sql/prune-dead-letters.js';
export { deadLetterTablesReady } from './sql/tables-ready.js';
export { dlqMirrorPositions, type DlqMirrorPosition } from './sql/mirror-positions.js';
export { copyDeadLetteredEvents } from './sql/audit-dead-letters.js';
